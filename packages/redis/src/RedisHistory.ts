/**
 * The cluster layer of `History` on Redis, in Centrifugo's way: lines are
 * published by ONE atomic Lua script (create the room's epoch if missing, per
 * line the next offset and `XADD` to the room's stream with id `<offset>-0`,
 * trim, `PUBLISH` the batch with its epoch and offsets), so offsets are
 * assigned once cluster-wide and a success means Redis accepted the line. The
 * lines of a room that arrive while its previous call is in flight go out
 * together in the next one (group commit). History is read with `XRANGE` by
 * offset. Each node subscribes (pub/sub) only to rooms it has local
 * subscribers for and fills any gap (offset jump, reconnect) from the stream.
 * The publishing node delivers its own lines to its members from the
 * script's answer (its pub/sub echo is then dropped): one hop less.
 *
 * @example
 * ```ts
 * import * as Redis from "@tether/redis/Redis"
 * import * as RedisHistory from "@tether/redis/RedisHistory"
 * import * as Layer from "effect/Layer"
 *
 * const HistoryLive = RedisHistory.layer({ prefix: "chat:" }).pipe(
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as History from "@tether/runtime/History"
import { randomBytes } from "node:crypto"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Feeds from "./internal/feeds.js"
import * as Scripts from "./internal/historyScripts.js"
import * as Template from "./internal/template.js"
import * as Redis from "./Redis.js"
import type * as Script from "./Script.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prefix of every key and channel (default `tether:`); no braces, or a key's hash tag is no longer its room. */
  readonly prefix?: string
  /** Bounds of each room's history (defaults: `History.defaultLimits`). */
  readonly limits?: Partial<History.Limits>
  /**
   * How long a room's epoch and offset outlive its last publish (default 7
   * days; 0: forever). After it, the room starts a new epoch.
   */
  readonly metaTtl?: Duration.DurationInput
  /** Pub/sub messages held per room while its stream is read (default 10,000). */
  readonly maxBuffered?: number
  /** Lines of one room sent in one call of the publish script at most (default 64). */
  readonly maxBatch?: number
}

/**
 * The keys of a room: its meta hash, its stream, its channel. The `{room}`
 * hash tag puts all three in one Redis Cluster slot.
 *
 * @since 0.2.0
 * @category keys
 */
export const keys = (prefix: string, room: string) => ({
  meta: `${prefix}h:{${room}}:meta`,
  stream: `${prefix}h:{${room}}:log`,
  channel: `${prefix}h:{${room}}`,
  /** A publish's idempotency key (10 minutes). */
  repeat: (key: string) => `${prefix}h:{${room}}:r:${key}`
})

/**
 * The oldest Redis the scripts run on: 6.2 (`XTRIM MINID`, an exclusive
 * `XRANGE` start).
 *
 * @since 0.2.0
 * @category version
 */
export const minimumVersion: readonly [major: number, minor: number] = [6, 2]

/**
 * The `redis_version` of an `INFO server` answer, and whether the scripts
 * run on it (undefined: no version in the answer, taken as fine).
 *
 * @since 0.2.0
 * @category version
 */
export const versionOf = (info: string): { readonly version: string; readonly supported: boolean } | undefined => {
  const match = /^redis_version:(\d+)\.(\d+)[^\r\n]*/m.exec(info)
  if (match === null) return undefined
  const [major, minor] = [Number(match[1]), Number(match[2])]
  const [needMajor, needMinor] = minimumVersion
  return {
    version: match[0].slice("redis_version:".length),
    supported: major > needMajor || (major === needMajor && minor >= needMinor)
  }
}

/**
 * Fails with `RedisError` (`Unsupported`) when the Redis in context is older
 * than {@link minimumVersion}: run it at start, before the first publish
 * would fail on a script error.
 *
 * @since 0.2.0
 * @category version
 */
export const checkVersion: Effect.Effect<void, Redis.RedisError, Redis.Redis> = Effect.gen(function*() {
  const redis = yield* Redis.Redis
  const found = versionOf(String(yield* redis.command(["INFO", "server"])))
  if (found !== undefined && !found.supported) {
    return yield* new Redis.RedisError({
      reason: "Unsupported",
      command: "INFO",
      cause: new Error(`Redis ${found.version}: the history needs ${minimumVersion.join(".")} or later`)
    })
  }
})

/**
 * The Lua scripts of the layer, for tools that run them directly (the bench
 * feeds the publish script to `redis-benchmark`).
 *
 * @since 0.2.0
 * @category internals
 */
export const scripts: { readonly publish: Script.Script; readonly read: Script.Script } = {
  publish: Scripts.publish,
  read: Scripts.read
}

// A candidate epoch goes with every call that may create a room's epoch; it
// must never repeat (a reused epoch would let an old position "recover" from
// a different history): random per layer, then a counter.
const makeEpochs = () => {
  const base = randomBytes(6).toString("hex")
  let next = 0
  return () => `${base}${(next++).toString(36)}`
}

const unavailable = (error: Redis.RedisError) => new History.HistoryUnavailable({ reason: error.message })

type Reply = Redis.Reply

interface Waiting {
  readonly text: string
  readonly key: string | undefined
  readonly done: (result: Either.Either<History.Position, History.HistoryUnavailable>) => void
}

const toEntries = (reply: Reply): ReadonlyArray<History.Entry> =>
  (reply as ReadonlyArray<ReadonlyArray<Reply>>).map(([id, fields]) => {
    const values = fields as ReadonlyArray<string>
    return { offset: Number.parseInt(id as string, 10), at: Number(values[1]), payload: values[3]! }
  })

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<History.History["Type"], never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const prefix = options.prefix ?? "tether:"
    const limits = { ...History.defaultLimits, ...options.limits }
    const metaTtl = String(Duration.toMillis(Duration.decode(options.metaTtl ?? "7 days")))
    const limitArgs = [String(limits.maxEntries), String(limits.maxBytes), String(limits.maxAgeMs), metaTtl]
    const compiler = Template.makeCompiler()
    const newEpoch = makeEpochs()

    const read = (room: string, epoch: string, offset: number, count: number) => {
      const k = keys(prefix, room)
      return redis.eval(Scripts.read, [k.meta, k.stream], [newEpoch(), epoch, String(offset), String(count), metaTtl])
        .pipe(
          Effect.map((reply): Feeds.Snapshot => {
            const [epochReply, top, now, entries] = reply as ReadonlyArray<Reply>
            return { epoch: epochReply as string, top: Number(top), now: Number(now), entries: toEntries(entries!) }
          }),
          Effect.mapError(unavailable)
        )
    }

    const feeds = yield* Feeds.make({
      subscribe: (room, onMessage) => Effect.mapError(redis.subscribeBytes(keys(prefix, room).channel, onMessage), unavailable),
      read,
      maxEntries: limits.maxEntries,
      maxBuffered: options.maxBuffered ?? 10_000
    })
    yield* redis.onReconnect(feeds.reconnected)

    // Group commit per room: a publish goes out at once when none of its
    // room is in flight; those that arrive meanwhile wait and go out together
    // in the next call of the script (in arrival order, at most
    // `maxBatch`), as soon as the one in flight is answered. One line alone
    // pays one round trip as before; a busy room pays one per batch. Each
    // publish still succeeds only once Redis has answered for its line.
    const lanes = new Map<string, Array<Waiting>>()
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const maxBatch = options.maxBatch ?? 64

    // One caller's callback that throws must not keep the rest of its batch unanswered.
    const answer = (waiting: Waiting, result: Parameters<Waiting["done"]>[0]) => {
      try {
        waiting.done(result)
      } catch (cause) {
        runFork(Effect.logError("History.publish: a caller's callback threw", cause))
      }
    }

    const flush = (room: string, lane: Array<Waiting>) => {
      const batch = lane.splice(0, maxBatch)
      const k = keys(prefix, room)
      const scriptKeys = [k.meta, k.stream]
      const args = [k.channel, newEpoch(), ...limitArgs, ...compiler.marks]
      for (const waiting of batch) {
        args.push(waiting.key === undefined ? "0" : String(scriptKeys.push(k.repeat(waiting.key))), waiting.text)
      }
      // A callback, not a fiber per call: the answer comes on node-redis's promise.
      redis.unsafeEval(Scripts.publish, scriptKeys, args, (result) => {
        next(room, lane)
        if (Either.isLeft(result)) {
          const failure = Either.left(unavailable(result.left))
          for (const waiting of batch) answer(waiting, failure)
          return
        }
        let i = 0
        try {
          const positions = result.right as ReadonlyArray<ReadonlyArray<Reply>>
          for (; i < batch.length; i++) {
            const [epochReply, offsetReply, atReply] = positions[i]!
            const epoch = epochReply as string
            const offset = Number(offsetReply)
            const text = batch[i]!.text
            const at = Number(atReply)
            // This node's members get the line now, its pub/sub echo is not waited for.
            feeds.published(room, epoch, offset, at, () => compiler.fill(text, epoch, offset, at))
            answer(batch[i]!, Either.right({ epoch, offset }))
          }
        } catch (cause) {
          // Not the script's answer (never seen): the rest of the batch fails, typed; the log says why.
          runFork(Effect.logError("History.publish: unexpected answer of the publish script", cause))
          const failure = Either.left(new History.HistoryUnavailable({ reason: "unexpected answer of the publish script" }))
          for (; i < batch.length; i++) answer(batch[i]!, failure)
        }
      })
    }
    const next = (room: string, lane: Array<Waiting>) => {
      if (lane.length > 0) flush(room, lane)
      else lanes.delete(room)
    }

    /** Queues a line for its room's next call (sent at once if none is in flight); undefined if render is not verbatim. */
    const enqueue = (
      room: string,
      render: (position: History.Position, at: number) => string,
      options: { readonly key?: string; readonly checked?: boolean } | undefined,
      done: Waiting["done"]
    ): Waiting | undefined => {
      const text = compiler.compile(render, options?.checked)
      if (text === undefined) return undefined
      const waiting: Waiting = { text, key: options?.key, done }
      const lane = lanes.get(room)
      if (lane === undefined) {
        const fresh: Array<Waiting> = [waiting]
        lanes.set(room, fresh)
        flush(room, fresh)
      } else {
        lane.push(waiting)
      }
      return waiting
    }
    const notVerbatim = "History.publish: render must write the epoch, offset and time it is given verbatim"

    const unsafePublish: NonNullable<History.History["Type"]["unsafePublish"]> = (room, render, options, done) => {
      if (enqueue(room, render, options, done) === undefined) throw new Error(notVerbatim)
    }

    const publish = (
      room: string,
      render: (position: History.Position, at: number) => string,
      options?: { readonly key?: string; readonly checked?: boolean }
    ) =>
      Effect.async<History.Position, History.HistoryUnavailable>((resume) => {
        const waiting = enqueue(room, render, options, resume)
        if (waiting === undefined) return resume(Effect.dieMessage(notVerbatim))
        // Interrupted before its batch went out: it never will.
        return Effect.sync(() => {
          const lane = lanes.get(room)
          const at = lane === undefined ? -1 : lane.indexOf(waiting)
          if (at >= 0) lane!.splice(at, 1)
        })
      })

    const position = (room: string) =>
      Effect.map(read(room, "", 0, 0), (snapshot): History.Position => ({ epoch: snapshot.epoch, offset: snapshot.top }))

    const recover = (room: string, from: History.Position) =>
      Effect.map(read(room, from.epoch, from.offset, limits.maxEntries), (snapshot): History.Recovery => {
        const position = { epoch: snapshot.epoch, offset: snapshot.top }
        // A position ahead of the room's top does not belong to this history.
        if (snapshot.epoch !== from.epoch || from.offset > snapshot.top) {
          return { _tag: "Unrecoverable", reason: "EpochChanged", position }
        }
        const cutoff = snapshot.now - limits.maxAgeMs
        const entries = snapshot.entries.filter((entry) => entry.at >= cutoff)
        const first = entries.length > 0 ? entries[0]!.offset : snapshot.top + 1
        if (first > from.offset + 1 || entries.length !== snapshot.top - from.offset) {
          return { _tag: "Unrecoverable", reason: "TooOld", position }
        }
        return { _tag: "Recovered", entries, position }
      })

    return History.History.of({ publish, unsafePublish, position, recover, subscribe: feeds.subscribe })
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<History.History, never, Redis.Redis> =>
  Layer.scoped(History.History, make(options))
