/**
 * The ordered, numbered history of each room, and delivery in that order.
 *
 * Every line said in a room is `publish`ed: it gets the room's next offset
 * (1, 2, 3, ... within one epoch), is kept in the room's bounded history, and
 * is delivered to every subscriber of the room, on every node that has one, in
 * offset order, exactly once. The room's epoch names one unbroken history: it
 * changes when that history is lost (a restart of an in-memory server), so a
 * client holding (epoch, offset) can tell "I missed entries 13..20" from "what
 * I missed is gone".
 *
 * This module is the port. The embedded default is an in-memory layer of
 * `@tether/runtime`; `@tether/redis` provides the cluster layer (Lua + Streams
 * + pub/sub). A publish that succeeds is durable as far as the layer promises
 * (memory: this process; Redis: accepted by Redis), so a server sends `Ack`
 * only after it.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { RoomLog } from "./internal/roomLog.js"

/**
 * One published line of a room: its offset within the room's epoch, when it
 * was accepted (Unix ms), and the encoded message (the codec's text).
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  readonly offset: number
  readonly at: number
  readonly payload: string
}

/**
 * Where a reader stands in a room: the epoch of the history it read and the
 * last offset it has (0: nothing yet).
 *
 * @since 0.2.0
 * @category models
 */
export interface Position {
  readonly epoch: string
  readonly offset: number
}

/**
 * The answer to "what did I miss since `from`": every entry after it, in
 * order, complete; or a plain "cannot", never a partial list presented as
 * complete.
 *
 * - `EpochChanged`: the history `from` refers to is gone (e.g. an in-memory
 *   server restarted).
 * - `TooOld`: entries after `from` have already been trimmed from history
 *   (count, age or byte bounds).
 *
 * @since 0.2.0
 * @category models
 */
export type Recovery =
  | { readonly _tag: "Recovered"; readonly entries: ReadonlyArray<Entry>; readonly position: Position }
  | {
    readonly _tag: "Unrecoverable"
    readonly reason: "EpochChanged" | "TooOld"
    /** Where the room stands now: a reader continues from here. */
    readonly position: Position
  }

/**
 * The history backend cannot be reached or refused the operation (cluster
 * mode: Redis down). The line was not accepted; the sender may retry.
 *
 * @since 0.2.0
 * @category errors
 */
export class HistoryUnavailable extends Data.TaggedError("HistoryUnavailable")<{
  readonly reason: string
}> {
  override get message(): string {
    return `history unavailable: ${this.reason}`
  }
}

/**
 * Bounds of each room's history.
 *
 * @since 0.2.0
 * @category models
 */
export interface Limits {
  /** Entries kept per room (default 1,000). */
  readonly maxEntries: number
  /** Age after which entries are dropped, in ms (default 10 minutes). */
  readonly maxAgeMs: number
  /** Payload bytes (UTF-16 units) kept per room (default 4 MiB). */
  readonly maxBytes: number
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultLimits: Limits = { maxEntries: 1_000, maxAgeMs: 10 * 60_000, maxBytes: 4 * 1024 * 1024 }

/**
 * What a subscriber is called with: one entry of `room` in epoch `epoch`.
 * Called in offset order, at most once per offset, without suspending.
 *
 * @since 0.2.0
 * @category models
 */
export type Deliver = (room: string, epoch: string, entry: Entry) => void

/**
 * @since 0.2.0
 * @category services
 */
export class History extends Context.Tag("@tether/runtime/History")<History, {
  /**
   * Appends `payload` to `room` with the room's next offset and delivers it
   * to the room's subscribers everywhere. `payload` is built by `render` from
   * the assigned position, so the message can carry its own offset. `render`
   * must write the epoch, offset and time verbatim, never a value computed
   * from them: a layer may assign them elsewhere (the Redis layer renders
   * once with marks and splices the real values in inside Redis). Succeeds
   * once the entry is durable as far as the layer promises.
   *
   * `key` (optional) makes the publish idempotent across nodes: a publish
   * with a key already published in the room within the layer's window
   * (Redis: 10 minutes, the current epoch) publishes nothing and returns the
   * first one's position. The memory layer ignores it (one process: the
   * chat's `Dedupe` sees every repeat).
   *
   * `checked: true` is the caller's word that `render` writes the values
   * verbatim and nothing else derived from them (e.g. the chat's own line
   * format, checked at start): the Redis layer then renders once per line
   * instead of twice.
   */
  readonly publish: (
    room: string,
    render: (position: Position, at: number) => string,
    options?: { readonly key?: string; readonly checked?: boolean }
  ) => Effect.Effect<Position, HistoryUnavailable>
  /**
   * `publish` without an Effect: `done` is called once, with the position or
   * the failure (a render that is not verbatim throws). Optional: a layer
   * whose publish waits on I/O (Redis) provides it, so a caller with many
   * lines in flight (the chat server) holds no suspended fiber per line.
   */
  readonly unsafePublish?: (
    room: string,
    render: (position: Position, at: number) => string,
    options: { readonly key?: string; readonly checked?: boolean } | undefined,
    done: (result: Either.Either<Position, HistoryUnavailable>) => void
  ) => void
  /** Where `room` stands now (a room never published to: its epoch, offset 0). */
  readonly position: (room: string) => Effect.Effect<Position, HistoryUnavailable>
  /** Every entry of `room` after `from`, or why they cannot all be had. */
  readonly recover: (room: string, from: Position) => Effect.Effect<Recovery, HistoryUnavailable>
  /**
   * Delivers every entry of `room` after the position it succeeds with to
   * `deliver`, in order, until the scope closes. That position is what this
   * subscription has seen, not a fresh read: on Redis, a read of the room
   * can be ahead of the pub/sub messages still on their way, and a member
   * told "you joined at N" must then get N itself later, never before.
   * One subscription per room per node is enough: the server fans out to
   * its local members itself.
   */
  readonly subscribe: (room: string, deliver: Deliver) => Effect.Effect<Position, HistoryUnavailable, Scope.Scope>
}>() {}

const epochAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/**
 * The in-memory history: each room's entries in this process, bounded by
 * `limits` (count, age read from `Clock`, payload size; entries leave oldest
 * first), delivered synchronously to this process's subscribers inside
 * `publish`, in offset order.
 *
 * Epochs are drawn at random when the layer is built (one per room, sharing
 * a random 12-character prefix), so the rooms of a restarted server have new
 * epochs and a client resuming from before the restart gets
 * `Unrecoverable` / `EpochChanged` instead of a silent gap. A `Deliver` that
 * throws is logged and skipped; the others still get the entry.
 *
 * At most `maxRooms` rooms are remembered (default {@link defaultMaxRooms}).
 * A new room beyond that makes room by forgetting the oldest rooms that
 * hold no entries (all trimmed) and have no subscriber; a client resuming a
 * forgotten room is told `EpochChanged`, never given a silent gap.
 *
 * @since 0.2.0
 * @category layers
 */
export const makeMemory = (limits?: Partial<Limits> & { readonly maxRooms?: number }): Effect.Effect<History["Type"]> =>
  Effect.gen(function*() {
    const bounds: Limits = {
      maxEntries: limits?.maxEntries ?? defaultLimits.maxEntries,
      maxAgeMs: limits?.maxAgeMs ?? defaultLimits.maxAgeMs,
      maxBytes: limits?.maxBytes ?? defaultLimits.maxBytes
    }
    const maxRooms = Math.max(1, limits?.maxRooms ?? defaultMaxRooms)
    const clock = yield* Effect.clock
    const random = yield* Effect.random
    let prefix = ""
    for (let i = 0; i < 12; i++) prefix += epochAlphabet[yield* random.nextIntBetween(0, epochAlphabet.length)]
    let roomCount = 0
    const logs = new Map<string, RoomLog>()
    const subscribers = new Map<string, Set<Deliver>>()
    // Forgets idle rooms, oldest first, until one more fits (or none is idle:
    // then every room has entries or subscribers, which their own bounds limit).
    const makeRoom = () => {
      const time = now()
      for (const [room, log] of logs) {
        if (logs.size < maxRooms) return
        if (subscribers.has(room)) continue
        log.trim(time)
        if (log.size() === 0) logs.delete(room)
      }
    }
    const logOf = (room: string): RoomLog => {
      let log = logs.get(room)
      if (log === undefined) {
        if (logs.size >= maxRooms) makeRoom()
        log = new RoomLog(`${prefix}${(roomCount++).toString(36)}`, bounds)
        logs.set(room, log)
      }
      return log
    }
    const now = () => clock.unsafeCurrentTimeMillis()
    return History.of({
      publish: (room, render) =>
        Effect.suspend(() => {
          const log = logOf(room)
          const entry = log.append(now(), render)
          const deliverTo = subscribers.get(room)
          let failures: Array<unknown> | undefined
          if (deliverTo !== undefined) {
            for (const deliver of deliverTo) {
              try {
                deliver(room, log.epoch, entry)
              } catch (error) {
                ;(failures ??= []).push(error)
              }
            }
          }
          const position: Position = { epoch: log.epoch, offset: entry.offset }
          return failures === undefined
            ? Effect.succeed(position)
            : Effect.as(
              Effect.logError(`History: ${failures.length} subscriber(s) of ${room.slice(0, 64)} threw`, failures[0]),
              position
            )
        }),
      position: (room) => Effect.sync(() => logOf(room).position()),
      recover: (room, from) => Effect.sync(() => logOf(room).recover(from, now())),
      subscribe: (room, deliver) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            // A fresh function per subscription, so subscribing the same
            // callback twice gives two deliveries and two releases.
            const entry: Deliver = (r, e, x) => deliver(r, e, x)
            let set = subscribers.get(room)
            if (set === undefined) subscribers.set(room, set = new Set())
            set.add(entry)
            return entry
          }),
          (entry) =>
            Effect.sync(() => {
              const set = subscribers.get(room)
              if (set === undefined) return
              set.delete(entry)
              if (set.size === 0) subscribers.delete(room)
            })
        ).pipe(Effect.map(() => logOf(room).position()))
    })
  })

/**
 * Rooms an in-memory history remembers at most.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultMaxRooms = 100_000

/**
 * {@link makeMemory} as a layer: the embedded default of a single server.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (limits?: Partial<Limits> & { readonly maxRooms?: number }): Layer.Layer<History> =>
  Layer.effect(History, makeMemory(limits))
