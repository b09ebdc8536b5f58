/**
 * The registry of a server's live sessions: count, lookup by user, list,
 * broadcast (encoded once, queued to each session without suspending) and
 * kick.
 *
 * @since 0.1.0
 */
import type * as Codec from "@tether/protocol/Codec"
import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import type * as Connection from "./Connection.js"
import * as Metrics from "./Metrics.js"

/**
 * One logged-in (or, for servers without login, accepted) connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session<M> {
  readonly id: number
  /** The user name the session logged in with; undefined before login or without a login step. */
  readonly user: string | undefined
  /** The peer's address, `host:port`, when the transport knows it. */
  readonly remote: string
  readonly connection: Connection.Connection<M>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Registry<M> {
  readonly count: () => number
  /** A live session of `user` (with {@link SessionsPerUser} `"many"`: the one that logged in first). */
  readonly get: (user: string) => Session<M> | undefined
  /** Every live session of `user`, in login order. */
  readonly sessionsOf: (user: string) => ReadonlyArray<Session<M>>
  /** Whether `session` is registered (and not yet removed). */
  readonly has: (session: Session<M>) => boolean
  readonly list: () => ReadonlyArray<Session<M>>
  /**
   * Encodes `message` once and queues it to every session (but `except`),
   * without suspending: a session whose queue is full is closed as a slow
   * consumer. Returns how many sessions it was queued to.
   */
  readonly broadcast: (message: M, options?: { readonly except?: Session<M> | undefined }) => Effect.Effect<number>
  /** `broadcast`, synchronously (for synchronous handlers). */
  readonly unsafeBroadcast: (message: M, options?: { readonly except?: Session<M> | undefined }) => number
  /** Sends the goodbye message (if the protocol has one), flushes, and closes. */
  readonly kick: (session: Session<M>, reason: string) => Effect.Effect<void>
  /** @internal */
  readonly add: (session: Session<M>) => boolean
  /** @internal */
  readonly remove: (session: Session<M>) => void
}

/**
 * How many live sessions one user name may have at once.
 * - `"one"`: a second login with a name in use is refused (status 100), as
 *   chat users expect a name to mean one person.
 * - `"many"`: every successful login is a session of its own, with its own
 *   heartbeat and its own kick, as the classic Go reference server allows.
 *
 * @since 0.1.0
 * @category models
 */
export type SessionsPerUser = "one" | "many"

/**
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = <M>(options: {
  readonly codec: Codec.Codec<M>
  readonly goodbye?: ((reason: string) => M | undefined) | undefined
  /** Default `"one"`. */
  readonly sessionsPerUser?: SessionsPerUser | undefined
}): Registry<M> => {
  const byId = new Map<number, Session<M>>()
  // Live sessions per user name, in login order (at most one under "one").
  const byUser = new Map<string, Array<Session<M>>>()
  const exclusive = (options.sessionsPerUser ?? "one") === "one"
  const none: ReadonlyArray<Session<M>> = []

  const unsafeBroadcast = (message: M, opts?: { readonly except?: Session<M> | undefined }): number => {
    // Encoded once for all: bytes, and text where the codec has it (a
    // connection over a text framing joins it with its other queued text).
    const codec = options.codec
    const payload = codec.encode(message)
    const text = codec.encodeText?.(message)
    // An unencodable message is the program's bug, not a peer's.
    if (!(payload instanceof Uint8Array)) throw payload
    if (text !== undefined && typeof text !== "string") throw text
    let delivered = 0
    for (const session of byId.values()) {
      if (session === opts?.except) continue
      if (session.connection.offerPayload(payload, text)) delivered++
    }
    return delivered
  }
  const broadcast = (message: M, opts?: { readonly except?: Session<M> | undefined }) =>
    Effect.sync(() => unsafeBroadcast(message, opts))

  const kick = (session: Session<M>, reason: string) =>
    Effect.sync(() => {
      const bye = options.goodbye?.(reason)
      if (bye !== undefined) session.connection.offer(bye)
      session.connection.close(reason)
      Metrics.kicks.unsafeUpdate(1, [MetricLabel.make("reason", reason)])
    })

  return {
    count: () => byId.size,
    get: (user) => byUser.get(user)?.[0],
    sessionsOf: (user) => byUser.get(user) ?? none,
    has: (session) => byId.get(session.id) === session,
    list: () => Array.from(byId.values()),
    broadcast,
    unsafeBroadcast,
    kick,
    add: (session) => {
      if (session.user !== undefined) {
        const sessions = byUser.get(session.user)
        if (sessions === undefined) byUser.set(session.user, [session])
        else if (exclusive) return false
        else sessions.push(session)
      }
      byId.set(session.id, session)
      return true
    },
    remove: (session) => {
      if (byId.get(session.id) !== session) return
      byId.delete(session.id)
      if (session.user === undefined) return
      const sessions = byUser.get(session.user)
      if (sessions === undefined) return
      const at = sessions.indexOf(session)
      if (at >= 0) sessions.splice(at, 1)
      if (sessions.length === 0) byUser.delete(session.user)
    }
  }
}
