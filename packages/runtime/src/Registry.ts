/**
 * The registry of a server's live sessions: the one structure that says who
 * is logged in, by id and by user name, and enforces how many sessions a user
 * may have. A service (`Context.Tag`) with a local, in-memory layer; a
 * cluster layer can stand in for it. A server that finds no `Registry` in its
 * context makes a local one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type * as Session from "./Session.js"

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
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** Registers a session (logged in, or accepted on a server without login); false if its name is taken. */
  readonly add: (session: Session.Any) => boolean
  /** Forgets a session (a stale remove is a no-op). */
  readonly remove: (session: Session.Any) => void
  readonly has: (session: Session.Any) => boolean
  readonly count: () => number
  /** A live session of `user` (with `"many"`: the one that logged in first). */
  readonly get: (user: string) => Session.Any | undefined
  /** Every live session of `user`, in login order. */
  readonly sessionsOf: (user: string) => ReadonlyArray<Session.Any>
  readonly list: () => ReadonlyArray<Session.Any>
}

/**
 * @since 0.2.0
 * @category services
 */
export class Registry extends Context.Tag("@tether/runtime/Registry")<Registry, Service>() {}

/**
 * The in-memory registry.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeLocal = (options: { readonly sessionsPerUser?: SessionsPerUser | undefined } = {}): Service => {
  const byId = new Map<number, Session.Any>()
  // Live sessions per user name, in login order (at most one under "one").
  const byUser = new Map<string, Array<Session.Any>>()
  const exclusive = (options.sessionsPerUser ?? "one") === "one"
  const none: ReadonlyArray<Session.Any> = []
  return {
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
    },
    has: (session) => byId.get(session.id) === session,
    count: () => byId.size,
    get: (user) => byUser.get(user)?.[0],
    sessionsOf: (user) => byUser.get(user) ?? none,
    list: () => Array.from(byId.values())
  }
}

/**
 * The in-memory registry as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerLocal = (
  options: { readonly sessionsPerUser?: SessionsPerUser | undefined } = {}
): Layer.Layer<Registry> => Layer.sync(Registry, () => makeLocal(options))
