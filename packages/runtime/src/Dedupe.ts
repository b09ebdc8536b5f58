/**
 * The server's memory of recent `Say`s, so a line resent after a lost `Ack`
 * is acknowledged again without being broadcast again.
 *
 * Each (user, id) is remembered from its first arrival for `window` (read from
 * `Clock`) and at most `maxEntries` of them are held (the oldest leave
 * first). The window must be longer than the longest time a client keeps
 * resending a line (its reconnect span); a line resent later than that, or
 * after `maxEntries` newer lines pushed it out, is taken as new.
 *
 * A repeat is recognised by (user, id) and a fingerprint of its content
 * (room and text): a restarted client that reuses an id for a different line
 * gets that line broadcast, not swallowed.
 *
 * @example
 * ```ts
 * const dedupe = yield* Dedupe.make<Position>()
 * const seen = dedupe.begin(user, say.id, `${room}\n${say.text}`)
 * switch (seen._tag) {
 *   case "New":      // publish; then seen.complete(position) and Ack, or seen.abandon() and refuse
 *   case "Done":     // Ack again with seen.value, broadcast nothing
 *   case "InFlight": // the first copy is being published: its Ack answers; ignore this one
 * }
 * ```
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * What `begin` found for a (user, id):
 * - `New`: not seen in the window (or seen with other content): publish it,
 *   then `complete` with what the `Ack` carries, or `abandon` if it failed;
 * - `InFlight`: the same line is being published now;
 * - `Done`: the same line was published: acknowledge it again with `value`.
 *
 * @since 0.2.0
 * @category models
 */
export type Seen<A> =
  | { readonly _tag: "New"; readonly complete: (value: A) => void; readonly abandon: () => void }
  | { readonly _tag: "InFlight" }
  | { readonly _tag: "Done"; readonly value: A }

/**
 * @since 0.2.0
 * @category models
 */
export interface Dedupe<A> {
  /** Looks up (user, id) with the fingerprint of its content, and records it if new. */
  readonly begin: (user: string, id: number, content: string) => Seen<A>
  /** Pairs remembered now. */
  readonly size: () => number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** How long a pair is remembered (default {@link defaultWindow}). */
  readonly window?: Duration.DurationInput
  /** Pairs remembered at most (default {@link defaultMaxEntries}). */
  readonly maxEntries?: number
}

/**
 * Ten minutes: longer than a client's whole reconnect schedule (10 attempts
 * backing off to 32 s, about 3.5 minutes).
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultWindow: Duration.Duration = Duration.minutes(10)

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultMaxEntries = 100_000

interface Remembered<A> {
  readonly at: number
  readonly fingerprint: number
  state: "InFlight" | "Done" | "Abandoned"
  value: A | undefined
}

/** FNV-1a over UTF-16 units, mixed with the length: 32 bits is plenty beside an id match. */
const fingerprintOf = (content: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < content.length; i++) {
    hash ^= content.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash ^ content.length) >>> 0
}

const inFlight = { _tag: "InFlight" } as const

/**
 * A new window over `now` (Unix ms), synchronously: for callers that read
 * the clock themselves.
 *
 * @since 0.2.0
 * @category constructors
 */
export const unsafeMake = <A>(now: () => number, options: Options = {}): Dedupe<A> => {
  const windowMs = Duration.toMillis(Duration.decode(options.window ?? defaultWindow))
  const maxEntries = Math.max(0, options.maxEntries ?? defaultMaxEntries)
  // Insertion order is arrival order: the oldest pair is the first key.
  const records = new Map<string, Remembered<A>>()
  const expire = (time: number) => {
    for (const [key, record] of records) {
      if (records.size > maxEntries || time - record.at > windowMs) records.delete(key)
      else break
    }
  }
  return {
    size: () => records.size,
    begin: (user, id, content) => {
      const time = now()
      expire(time)
      const key = `${id}\u0000${user}`
      const fingerprint = fingerprintOf(content)
      const found = records.get(key)
      if (found !== undefined && found.fingerprint === fingerprint && found.state !== "Abandoned") {
        return found.state === "Done" ? { _tag: "Done", value: found.value as A } : inFlight
      }
      const record: Remembered<A> = { at: time, fingerprint, state: "InFlight", value: undefined }
      records.delete(key)
      records.set(key, record)
      expire(time)
      return {
        _tag: "New",
        complete: (value) => {
          if (record.state !== "InFlight") return
          record.state = "Done"
          record.value = value
        },
        abandon: () => {
          if (record.state !== "InFlight") return
          record.state = "Abandoned"
          if (records.get(key) === record) records.delete(key)
        }
      }
    }
  }
}

/**
 * A new window reading the time from `Clock`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <A>(options: Options = {}): Effect.Effect<Dedupe<A>> =>
  Effect.map(Effect.clock, (clock) => unsafeMake<A>(() => clock.unsafeCurrentTimeMillis(), options))
