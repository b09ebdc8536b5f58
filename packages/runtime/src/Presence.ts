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
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
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
  /**
   * Tells the other nodes of the cluster that `change` happened here (a
   * member joined or left a room), so they tell their own members. Best
   * effort, at most once: a notice, not a history entry. In memory there are
   * no other nodes (a no-op).
   *
   * @since 0.2.0
   */
  readonly announce: (change: Change) => Effect.Effect<void, PresenceUnavailable>
  /**
   * Calls `onChange` for each change announced by another node, until the
   * scope closes (never in memory).
   *
   * @since 0.2.0
   */
  readonly changes: (onChange: (change: Change) => void) => Effect.Effect<void, never, Scope.Scope>
}>() {}

/**
 * A change of a room's members, announced across nodes: `Joined`, or `Left`
 * with the reason the member's node gave (`"node lost"` when the member
 * vanished with its node).
 *
 * @since 0.2.0
 * @category models
 */
export type Change =
  | { readonly _tag: "Joined"; readonly room: string; readonly user: string }
  | { readonly _tag: "Left"; readonly room: string; readonly user: string; readonly reason: string }

/**
 * The in-memory presence of a single server: names claimed per session id,
 * members per room (a room with no members is forgotten). Nobody is ever
 * `lost` in memory: a session that ends releases its name and leaves its
 * rooms itself.
 *
 * @since 0.2.0
 * @category layers
 */
export const makeMemory: Effect.Effect<Presence["Type"]> = Effect.sync(() => {
  const holders = new Map<string, string>()
  const rooms = new Map<string, Set<string>>()
  return Presence.of({
    claim: (user, session) =>
      Effect.sync(() => {
        const holder = holders.get(user)
        if (holder !== undefined && holder !== session) return false
        holders.set(user, session)
        return true
      }),
    release: (user, session) =>
      Effect.sync(() => {
        if (holders.get(user) === session) holders.delete(user)
      }),
    join: (room, user) =>
      Effect.sync(() => {
        let members = rooms.get(room)
        if (members === undefined) rooms.set(room, members = new Set())
        members.add(user)
      }),
    leave: (room, user) =>
      Effect.sync(() => {
        const members = rooms.get(room)
        if (members === undefined) return
        members.delete(user)
        if (members.size === 0) rooms.delete(room)
      }),
    members: (room, options) =>
      Effect.sync(() => {
        const members = rooms.get(room)
        if (members === undefined) return []
        const sorted = Array.from(members).sort()
        const limit = options?.limit
        return limit === undefined ? sorted : sorted.slice(0, Math.max(0, limit))
      }),
    lost: () => Effect.void,
    announce: () => Effect.void,
    changes: () => Effect.void
  })
})

/**
 * {@link makeMemory} as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Presence> = Layer.effect(Presence, makeMemory)
