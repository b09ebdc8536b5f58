/** @internal */
import { createClient, ErrorReply, TimeoutError } from "@redis/client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Redis from "../Redis.js"
import { defaultOptions, RedisError } from "../Redis.js"
import * as RedisMetrics from "../RedisMetrics.js"
import type * as Script from "../Script.js"

type Role = "command" | "pubsub" | "blocking"

const maxQueued = 100_000

const roundTripsBy = {
  command: RedisMetrics.roundTrips.pipe(Metric.tagged("connection", "command")),
  pubsub: RedisMetrics.roundTrips.pipe(Metric.tagged("connection", "pubsub")),
  blocking: RedisMetrics.roundTrips.pipe(Metric.tagged("connection", "blocking"))
}

const tagged = {
  command: [MetricLabel.make("connection", "command")],
  pubsub: [MetricLabel.make("connection", "pubsub")],
  blocking: [MetricLabel.make("connection", "blocking")]
} as const

const reasonTags = {
  Unavailable: [MetricLabel.make("reason", "Unavailable")],
  Timeout: [MetricLabel.make("reason", "Timeout")],
  ErrorReply: [MetricLabel.make("reason", "ErrorReply")]
} as const

const millis = (input: Duration.DurationInput): number => Duration.toMillis(Duration.decode(input))

/** @internal */
export const toRedisError = (command: string, cause: unknown): RedisError => {
  const reason = cause instanceof ErrorReply ? "ErrorReply" : cause instanceof TimeoutError ? "Timeout" : "Unavailable"
  RedisMetrics.errors.unsafeUpdate(1, reasonTags[reason])
  return new RedisError({ reason, command, cause })
}

const openClient = (options: Redis.Options, role: Role) => {
  const base = millis(options.reconnectBase ?? defaultOptions.reconnectBase)
  const max = millis(options.reconnectMax ?? defaultOptions.reconnectMax)
  const connectTimeout = millis(options.connectTimeout ?? defaultOptions.connectTimeout)
  return Effect.acquireRelease(
    Effect.sync(() => {
      const client = createClient({
        url: options.url,
        RESP: 2,
        name: `${options.name ?? defaultOptions.name}:${role}`,
        disableOfflineQueue: true,
        // Commands sent to a Redis that stopped answering wait for its reply
        // (or the socket's death) in node-redis's queue: bound it.
        commandsQueueMaxLength: maxQueued,
        commandOptions: { timeout: 0 },
        socket: {
          connectTimeout,
          // Exponential backoff with jitter, forever: the service heals by itself.
          reconnectStrategy: (retries) => Math.min(base * 2 ** Math.min(retries, 20), max) * (0.5 + Math.random() / 2)
        }
      })
      let ready = false
      // node-redis emits 'error' for every lost connection; without a listener Node would throw.
      client.on("error", () => {
        if (ready) {
          ready = false
          RedisMetrics.disconnects.unsafeUpdate(1, tagged[role])
        }
      })
      client.on("ready", () => {
        ready = true
      })
      return client
    }),
    (client) => Effect.sync(() => client.destroy())
  ).pipe(
    Effect.tap((client) =>
      Effect.tryPromise({
        try: () => client.connect(),
        catch: (cause) => toRedisError("CONNECT", cause)
      }).pipe(
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () => new RedisError({ reason: "Unavailable", command: "CONNECT", cause: new Error("connect timeout") })
        })
      )
    )
  )
}

type Client = Effect.Effect.Success<ReturnType<typeof openClient>>

interface Pending {
  readonly deadline: number
  readonly command: string
  readonly fail: (error: RedisError) => void
}

/** @internal */
export const make = (options: Redis.Options): Effect.Effect<Redis.Service, RedisError, Scope.Scope> =>
  Effect.gen(function*() {
    const commandTimeout = millis(options.commandTimeout ?? defaultOptions.commandTimeout)
    const commands = yield* openClient(options, "command")
    const pubsub = yield* openClient(options, "pubsub")
    const blockingClient = yield* openClient(options, "blocking")
    const blockingLock = yield* Effect.makeSemaphore(1)

    // node-redis times out only commands not yet written, so the timeout is
    // ours: commands in flight are kept in insertion order (their deadlines
    // too, per connection) and one watchdog fiber fails the expired ones.
    // Interrupting stops the wait, not the command: no AbortSignal per command
    // (an AbortController and two listeners per command were ~4% of a cluster
    // node's CPU under load; node-redis writes a command on the next tick).
    const clock = yield* Effect.clock
    const inFlight = { command: new Set<Pending>(), pubsub: new Set<Pending>(), blocking: new Set<Pending>() }
    /**
     * Sends `args` on `client` and calls `done` once, with the reply or the
     * typed failure (the watchdog below fails it at `timeout`); the returned
     * function stops the wait. Both the Effect and the callback forms run on it.
     */
    const dispatch = (
      client: Client,
      role: Role,
      args: ReadonlyArray<string>,
      timeout: number,
      done: (result: Either.Either<Redis.Reply, RedisError>) => void
    ): () => void => {
      roundTripsBy[role].unsafeUpdate(1, [])
      const pending: Pending = {
        deadline: clock.unsafeCurrentTimeMillis() + timeout,
        command: args[0] ?? "",
        fail: (error) => done(Either.left(error))
      }
      let sent: Promise<Redis.Reply>
      try {
        sent = client.sendCommand(args) as Promise<Redis.Reply>
      } catch (cause) {
        // node-redis refuses some calls at once (a closed client): the same typed failure, once.
        sent = Promise.reject(cause)
      }
      const set = inFlight[role]
      set.add(pending)
      sent.then(
        (reply) => {
          if (set.delete(pending)) done(Either.right(reply))
        },
        (cause) => {
          if (set.delete(pending)) done(Either.left(toRedisError(pending.command, cause)))
        }
      )
      return () => void set.delete(pending)
    }
    const send = (client: Client, role: Role, args: ReadonlyArray<string>, timeout: number) =>
      Effect.async<Redis.Reply, RedisError>((resume) => {
        const stop = dispatch(client, role, args, timeout, (result) => resume(result))
        return Effect.sync(stop)
      })
    const expire = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const set of Object.values(inFlight)) {
        for (const pending of set) {
          if (pending.deadline > now) {
            if (set !== inFlight.blocking) break
            continue
          }
          set.delete(pending)
          pending.fail(toRedisError(pending.command, new TimeoutError()))
        }
      }
    })
    yield* expire.pipe(
      Effect.schedule(Schedule.spaced(Math.min(250, Math.max(10, Math.floor(commandTimeout / 10))))),
      // Made in a finalizer (an uninterruptible region), the loop would
      // inherit it and its scope could never stop it.
      Effect.interruptible,
      Effect.forkScoped
    )

    const command = (args: ReadonlyArray<string>) => send(commands, "command", args, commandTimeout)

    const unsafeCommand = (args: ReadonlyArray<string>, done: (result: Either.Either<Redis.Reply, RedisError>) => void) =>
      void dispatch(commands, "command", args, commandTimeout, done)
    const isNoScript = (error: RedisError) =>
      error.reason === "ErrorReply" && String((error.cause as Error).message).startsWith("NOSCRIPT")

    const unsafeEval: Redis.Service["unsafeEval"] = (script, keys, args, done) =>
      unsafeCommand(["EVALSHA", script.sha, String(keys.length), ...keys, ...args], (result) => {
        if (Either.isLeft(result) && isNoScript(result.left)) {
          unsafeCommand(["EVAL", script.lua, String(keys.length), ...keys, ...args], done)
        } else {
          done(result)
        }
      })

    const evalScript = (script: Script.Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
      command(["EVALSHA", script.sha, String(keys.length), ...keys, ...args]).pipe(
        Effect.catchIf(isNoScript, () => command(["EVAL", script.lua, String(keys.length), ...keys, ...args]))
      )

    const blocking = (args: ReadonlyArray<string>, block: Duration.DurationInput) =>
      blockingLock.withPermits(1)(send(blockingClient, "blocking", args, commandTimeout + millis(block)))

    const listen = <T extends boolean>(channel: string, onMessage: (message: T extends true ? Buffer : string) => void, bufferMode: T) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => {
            roundTripsBy.pubsub.unsafeUpdate(1, [])
            return pubsub.subscribe(channel, onMessage as never, bufferMode)
          },
          catch: (cause) => toRedisError("SUBSCRIBE", cause)
        }).pipe(
          Effect.timeoutFail({
            duration: commandTimeout,
            onTimeout: () => new RedisError({ reason: "Timeout", command: "SUBSCRIBE" })
          }),
          Effect.onError(() => Effect.sync(() => void pubsub.unsubscribe(channel, onMessage as never, bufferMode).catch(() => undefined)))
        ),
        () =>
          Effect.sync(() => {
            roundTripsBy.pubsub.unsafeUpdate(1, [])
            // The listener leaves node-redis's table at once; the UNSUBSCRIBE
            // reply (or its failure while Redis is down) is not waited for.
            pubsub.unsubscribe(channel, onMessage as never, bufferMode).catch(() => undefined)
          })
      ).pipe(Effect.asVoid)

    const subscribe = (channel: string, onMessage: (message: string) => void) => listen(channel, onMessage, false)
    const subscribeBytes = (channel: string, onMessage: (message: Buffer) => void) => listen(channel, onMessage, true)

    const onReconnect = (f: () => void) => {
      let lost = false
      const onError = () => {
        lost = true
      }
      const onReady = () => {
        if (lost) {
          lost = false
          f()
        }
      }
      return Effect.acquireRelease(
        // A lost connection shows as an error or, without one, as a reconnect attempt.
        Effect.sync(() => {
          pubsub.on("error", onError)
          pubsub.on("reconnecting", onError)
          pubsub.on("ready", onReady)
        }),
        () =>
          Effect.sync(() => {
            pubsub.off("error", onError)
            pubsub.off("reconnecting", onError)
            pubsub.off("ready", onReady)
          })
      )
    }

    return { command, eval: evalScript, unsafeEval, blocking, subscribe, subscribeBytes, onReconnect } satisfies Redis.Service
  })
