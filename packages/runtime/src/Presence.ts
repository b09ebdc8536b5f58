/**
 * Who is online, and in which rooms: the one place that says a user name is
 * taken and lists a room's members.
 *
 * This module is the port. The embedded default is an in-memory layer of
 * `@tether/runtime`; `@tether/redis` provides the cluster layer, where each
 * node refreshes its users' presence with a TTL, so the users of a node that
 * dies without a word are released (and announced as left, through `lost`)
 * within a bound, and a name held on node A is refused on node B.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * The presence backend cannot be reached (cluster mode: Redis down).
 *
 * @since 0.2.0
 * @category errors
 */
export class PresenceUnavailable extends Data.TaggedError("PresenceUnavailable")<{
  readonly reason: string
}> {
  override get message(): string {
    return `presence unavailable: ${this.reason}`
  }
}

/**
 * @since 0.2.0
 * @category services
 */
export class Presence extends Context.Tag("@tether/runtime/Presence")<Presence, {
  /**
   * Claims `user` for the session `session` (a cluster-unique id). False
   * when the name is held by another live session, on any node.
   */
  readonly claim: (user: string, session: string) => Effect.Effect<boolean, PresenceUnavailable>
  /** Releases `user` if `session` holds it (a stale release is a no-op). */
  readonly release: (user: string, session: string) => Effect.Effect<void, PresenceUnavailable>
  /** Records `user` as a member of `room`. */
  readonly join: (room: string, user: string) => Effect.Effect<void, PresenceUnavailable>
  /** Removes `user` from `room`. */
  readonly leave: (room: string, user: string) => Effect.Effect<void, PresenceUnavailable>
  /** The members of `room`, sorted, at most `limit` of them (default: all). */
  readonly members: (
    room: string,
    options?: { readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<string>, PresenceUnavailable>
  /**
   * Calls `onLost(room, user)` for each member of a room who vanished with a
   * lost node (cluster mode; never in memory), once cluster-wide, until the
   * scope closes.
   */
  readonly lost: (
    onLost: (room: string, user: string) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
}>() {}
