/**
 * A client's offline send buffer: the lines typed but not yet acknowledged.
 *
 * A line is queued with a stable id before it is sent, stays queued through
 * any number of reconnects, and leaves only when its `Ack` arrives (or a
 * refusal that must not be retried). After a reconnect the client sends
 * {@link Outbox.pending} again, in order, each with its original id; the
 * server acknowledges a repeat it already broadcast without broadcasting it
 * again (see `Dedupe`). The queue is bounded: when full, a new line is
 * refused with {@link OutboxFull} and nothing already queued is dropped.
 *
 * @example
 * ```ts
 * const outbox = Outbox.unsafeMake({ firstId: 1 })
 * const queued = outbox.offer("#lobby", "hello")       // Either<Line, OutboxFull>
 * // connected: send Say { id, text, room } for each of outbox.pending()
 * outbox.ack(1)                                           // on Ack { id: 1 }
 * ```
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

/**
 * One queued line: its id (kept on every resend), room and text.
 *
 * @since 0.2.0
 * @category models
 */
export interface Line {
  readonly id: number
  readonly room: string
  readonly text: string
}

/**
 * A line was not queued: `capacity` lines are already waiting.
 *
 * @since 0.2.0
 * @category errors
 */
export class OutboxFull extends Data.TaggedError("OutboxFull")<{ readonly capacity: number }> {
  override get message(): string {
    return `not queued: ${this.capacity} lines are already waiting to be sent`
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Outbox {
  /** The most lines it holds. */
  readonly capacity: number
  /** Lines waiting for their `Ack`. */
  readonly size: () => number
  /** Queues a line under a fresh id, or refuses it when full (nothing is dropped). */
  readonly offer: (room: string, text: string) => Either.Either<Line, OutboxFull>
  /** Removes the line `id` (its `Ack` arrived); false if no such line waits (a repeated `Ack`). */
  readonly ack: (id: number) => boolean
  /** Removes and returns the line `id` (a refusal not to be retried). */
  readonly drop: (id: number) => Line | undefined
  /** The waiting lines in the order they were queued: what to send after a reconnect. */
  readonly pending: () => ReadonlyArray<Line>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Lines held at most (default {@link defaultCapacity}). */
  readonly capacity?: number
  /**
   * The first id handed out (then +1, wrapping at 2^32). {@link make} draws
   * it at random, so that a restarted client does not reuse the ids of the
   * previous run while the server still remembers them.
   */
  readonly firstId?: number
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultCapacity = 1_000

/**
 * A new outbox, synchronously.
 *
 * @since 0.2.0
 * @category constructors
 */
export const unsafeMake = (options: Options = {}): Outbox => {
  const capacity = Math.max(0, Math.min(options.capacity ?? defaultCapacity, 0xffff_ffff))
  // A Map keeps insertion order and removes any id in O(1).
  const lines = new Map<number, Line>()
  let next = (options.firstId ?? 1) >>> 0
  const freshId = (): number => {
    // An id still waiting is never reused (only possible after 2^32 lines).
    while (lines.has(next)) next = (next + 1) >>> 0
    const id = next
    next = (next + 1) >>> 0
    return id
  }
  return {
    capacity,
    size: () => lines.size,
    offer: (room, text) => {
      if (lines.size >= capacity) return Either.left(new OutboxFull({ capacity }))
      const line: Line = { id: freshId(), room, text }
      lines.set(line.id, line)
      return Either.right(line)
    },
    ack: (id) => lines.delete(id),
    drop: (id) => {
      const line = lines.get(id)
      if (line !== undefined) lines.delete(id)
      return line
    },
    pending: () => Array.from(lines.values())
  }
}

/**
 * A new outbox whose first id is drawn from `Random` unless given.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Outbox> =>
  options.firstId !== undefined
    ? Effect.sync(() => unsafeMake(options))
    : Effect.map(Effect.randomWith((random) => random.nextIntBetween(0, 0xffff_ffff)), (firstId) =>
      unsafeMake({ ...options, firstId }))
