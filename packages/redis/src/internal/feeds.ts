/** @internal */
import type * as History from "@tether/runtime/History"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as RedisMetrics from "../RedisMetrics.js"

// One feed per room with local subscribers: one pub/sub subscription, the
// room's (epoch, last delivered offset), and its local delivers. A message
// with the next offset is delivered at once; a duplicate is dropped; a jump,
// another epoch or a reconnect starts a read of the room's stream (one
// consistent snapshot through a script) while newer messages wait in a
// bounded buffer, delivered after the read in order.

/** @internal */
export interface Incoming {
  readonly epoch: string
  readonly entry: History.Entry
}

/** @internal */
export interface Snapshot {
  readonly epoch: string
  readonly top: number
  readonly now: number
  readonly entries: ReadonlyArray<History.Entry>
}

/** @internal */
export interface FeedsOptions {
  readonly subscribe: (
    room: string,
    onMessage: (message: Buffer) => void
  ) => Effect.Effect<void, History.HistoryUnavailable, Scope.Scope>
  /** Entries of `room` after (epoch, offset); `count` 0: the position only. */
  readonly read: (
    room: string,
    epoch: string,
    offset: number,
    count: number
  ) => Effect.Effect<Snapshot, History.HistoryUnavailable>
  readonly maxEntries: number
  readonly maxBuffered: number
}

interface Feed {
  readonly room: string
  readonly delivers: Set<History.Deliver>
  readonly ready: Deferred.Deferred<void, History.HistoryUnavailable>
  readonly scope: Scope.CloseableScope
  epoch: string
  last: number
  /** Defined while a read is in flight: messages received meanwhile, in order. */
  buffer: Array<Incoming> | undefined
  /** The buffer overflowed, or Redis reconnected, during the read: read again after it. */
  again: boolean
  reader: Fiber.RuntimeFiber<void, unknown> | undefined
  closed: boolean
  /** Offsets this node delivered from its own publish's answer, their pub/sub echo still to come (ascending). */
  answered: Array<number>
}

const colon = 0x3a

/** The decimal number in `message[from, to)`, -1 if it is not one (or not safe). */
const digits = (message: Buffer, from: number, to: number): number => {
  if (to <= from || to - from > 15) return -1
  let n = 0
  for (let i = from; i < to; i++) {
    const d = message[i]! - 0x30
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/**
 * A pub/sub message of the publish script: `*<epoch>:<count>:` then per line
 * `<offset>:<at>:<bytes>:<payload>` (bytes: the payload's UTF-8 length).
 * Undefined when malformed (the feed then fills from the stream when the next
 * good message shows the jump).
 *
 * @internal
 */
export const parse = (message: Buffer): ReadonlyArray<Incoming> | undefined => {
  if (message[0] !== 0x2a) return undefined
  const e = message.indexOf(colon, 1)
  const c = e < 0 ? -1 : message.indexOf(colon, e + 1)
  if (c < 0) return undefined
  const epoch = message.toString("latin1", 1, e)
  const count = digits(message, e + 1, c)
  if (count < 1) return undefined
  const out: Array<Incoming> = []
  let at = c + 1
  for (let n = 0; n < count; n++) {
    const i = message.indexOf(colon, at)
    const j = i < 0 ? -1 : message.indexOf(colon, i + 1)
    const k = j < 0 ? -1 : message.indexOf(colon, j + 1)
    if (k < 0) return undefined
    const offset = digits(message, at, i)
    const time = digits(message, i + 1, j)
    const bytes = digits(message, j + 1, k)
    const end = k + 1 + bytes
    if (offset < 0 || time < 0 || bytes < 0 || end > message.length) return undefined
    out.push({ epoch, entry: { offset, at: time, payload: message.toString("utf8", k + 1, end) } })
    at = end
  }
  return at === message.length ? out : undefined
}

const retry = Schedule.exponential("50 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

/** @internal */
export const make = (options: FeedsOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const feeds = new Map<string, Feed>()

    const deliverAll = (feed: Feed, entry: History.Entry) => {
      for (const deliver of feed.delivers) {
        try {
          deliver(feed.room, feed.epoch, entry)
        } catch (cause) {
          runFork(Effect.logError("history subscriber threw", cause))
        }
      }
    }

    /** The pub/sub echo of a line already delivered from its publish's answer (not a duplicate). */
    const isEcho = (feed: Feed, offset: number) => {
      const answered = feed.answered
      // Older ones lost their echo (a dropped pub/sub message): forgotten.
      while (answered.length > 0 && answered[0]! < offset) answered.shift()
      if (answered[0] !== offset) return false
      answered.shift()
      return true
    }

    const onMessage = (feed: Feed, message: Incoming, afterRead: boolean) => {
      if (feed.closed) return
      if (feed.buffer !== undefined) {
        if (feed.buffer.length >= options.maxBuffered) {
          // The next read covers these from the stream.
          feed.buffer.length = 0
          feed.again = true
        }
        feed.buffer.push(message)
        return
      }
      if (message.epoch === feed.epoch) {
        if (message.entry.offset <= feed.last) {
          if (!isEcho(feed, message.entry.offset)) RedisMetrics.duplicates.unsafeUpdate(1, [])
          return
        }
        if (message.entry.offset === feed.last + 1) {
          feed.last = message.entry.offset
          deliverAll(feed, message.entry)
          return
        }
      } else if (afterRead) {
        // The read just said which epoch is current: this message is older.
        RedisMetrics.duplicates.unsafeUpdate(1, [])
        return
      }
      startRead(feed, [message])
    }

    /**
     * A line this node published, as the script answered it: delivered at
     * once when it is the room's next offset, without waiting for its pub/sub
     * echo (one hop less for this node's members; the echo is then dropped).
     * Otherwise (a gap before it, a read in flight, another epoch) the echo
     * delivers it in order as any other node's line.
     */
    const published = (room: string, epoch: string, offset: number, at: number, payload: () => string) => {
      const feed = feeds.get(room)
      if (
        feed === undefined || feed.closed || feed.buffer !== undefined || feed.epoch !== epoch ||
        offset !== feed.last + 1
      ) return
      feed.last = offset
      if (feed.answered.length >= options.maxBuffered) feed.answered.length = 0
      feed.answered.push(offset)
      deliverAll(feed, { offset, at, payload: payload() })
    }

    const apply = (feed: Feed, snapshot: Snapshot, initial: boolean) => {
      if (initial) {
        feed.epoch = snapshot.epoch
        feed.last = snapshot.top
      } else {
        if (snapshot.epoch !== feed.epoch) {
          // The history this feed followed is gone (e.g. Redis restarted
          // empty): deliver the new epoch from its start, never invent.
          RedisMetrics.unrecoverable.unsafeUpdate(1, [])
          runFork(Effect.logWarning(`room ${feed.room}: epoch changed ${feed.epoch} -> ${snapshot.epoch}`))
          feed.epoch = snapshot.epoch
          feed.last = 0
        }
        for (const entry of snapshot.entries) {
          if (entry.offset <= feed.last) continue
          if (entry.offset > feed.last + 1) RedisMetrics.unrecoverable.unsafeUpdate(1, [])
          feed.last = entry.offset
          RedisMetrics.gapFilled.unsafeUpdate(1, [])
          deliverAll(feed, entry)
        }
        if (snapshot.top > feed.last) {
          RedisMetrics.unrecoverable.unsafeUpdate(1, [])
          feed.last = snapshot.top
        }
      }
      const buffered = feed.buffer ?? []
      feed.buffer = undefined
      if (feed.again) {
        feed.again = false
        startRead(feed, [])
        return
      }
      for (const message of buffered) onMessage(feed, message, true)
    }

    const startRead = (feed: Feed, buffer: Array<Incoming>) => {
      feed.buffer = buffer
      feed.answered.length = 0
      feed.reader = runFork(
        options.read(feed.room, feed.epoch, feed.last, options.maxEntries).pipe(
          Effect.tapError((error) => Effect.logWarning(`room ${feed.room}: reading the stream failed`, error)),
          Effect.retry(retry),
          Effect.flatMap((snapshot) => Effect.sync(() => apply(feed, snapshot, false))),
          Effect.onInterrupt(() => Effect.sync(() => void (feed.buffer = undefined)))
        )
      )
    }

    const open = (feed: Feed) =>
      Effect.gen(function*() {
        yield* options.subscribe(feed.room, (raw) => {
          const messages = parse(raw)
          if (messages !== undefined) for (const message of messages) onMessage(feed, message, false)
        }).pipe(Scope.extend(feed.scope))
        const snapshot = yield* options.read(feed.room, "", 0, 0)
        if (!feed.closed) apply(feed, snapshot, true)
      })

    const close = (feed: Feed) => {
      feed.closed = true
      if (feeds.get(feed.room) === feed) feeds.delete(feed.room)
      const reader = feed.reader
      return Effect.zipRight(
        reader === undefined ? Effect.void : Fiber.interrupt(reader),
        Scope.close(feed.scope, Exit.void)
      )
    }

    const attach = (room: string, deliver: History.Deliver) =>
      Effect.gen(function*() {
        const existing = feeds.get(room)
        if (existing !== undefined) {
          existing.delivers.add(deliver)
          return existing
        }
        const feed: Feed = {
          room,
          delivers: new Set([deliver]),
          ready: yield* Deferred.make<void, History.HistoryUnavailable>(),
          scope: yield* Scope.make(),
          epoch: "",
          last: 0,
          buffer: [],
          again: false,
          reader: undefined,
          closed: false,
          answered: []
        }
        feeds.set(room, feed)
        yield* open(feed).pipe(
          Effect.tapError(() => close(feed)),
          Effect.intoDeferred(feed.ready),
          Effect.interruptible,
          Effect.forkDaemon
        )
        return feed
      })

    const detach = (feed: Feed, deliver: History.Deliver) =>
      Effect.suspend(() => {
        feed.delivers.delete(deliver)
        return feed.delivers.size === 0 && !feed.closed ? close(feed) : Effect.void
      })

    yield* Effect.addFinalizer(() => Effect.forEach([...feeds.values()], close, { discard: true }))

    return {
      /** Succeeds with what the room's feed has delivered so far: `deliver` gets every entry after it. */
      subscribe: (room: string, deliver: History.Deliver) =>
        Effect.acquireRelease(attach(room, deliver), (feed) => detach(feed, deliver)).pipe(
          Effect.flatMap((feed) =>
            Effect.map(Deferred.await(feed.ready), (): History.Position => ({ epoch: feed.epoch, offset: feed.last }))
          )
        ),
      published,
      /** Redis came back: every feed reads what pub/sub may have dropped meanwhile. */
      reconnected: () => {
        for (const feed of feeds.values()) {
          if (feed.closed) continue
          if (feed.buffer !== undefined) feed.again = true
          else startRead(feed, [])
        }
      }
    }
  })
