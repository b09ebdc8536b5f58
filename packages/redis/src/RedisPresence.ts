/**
 * The cluster layer of `Presence` on Redis. A name is a key holding the
 * session id (`SET NX` with a TTL the owning node refreshes); a room's members
 * are a hash user -> node; each node refreshes a heartbeat key with a TTL and
 * records what it holds in two sets of its own. A node whose heartbeat key
 * expired is dead: one surviving node (lock: `SET NX`) removes its members,
 * calling `onLost(room, user)` for each exactly once (the removal is a
 * compare-and-delete), and frees its names.
 *
 * Bound: a dead node's members are announced within `nodeTtl +
 * sweepInterval` (+ the sweep itself) of its last refresh: 8 s by default.
 *
 * @example
 * ```ts
 * import * as Redis from "@tether/redis/Redis"
 * import * as RedisPresence from "@tether/redis/RedisPresence"
 * import * as Layer from "effect/Layer"
 *
 * const PresenceLive = RedisPresence.layer({ nodeId: "node-a" }).pipe(
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Presence from "@tether/runtime/Presence"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Scripts from "./internal/presenceScripts.js"
import * as Redis from "./Redis.js"
import * as RedisMetrics from "./RedisMetrics.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** This node's id, unique in the cluster. */
  readonly nodeId: string
  /** Prefix of every key (default `tether:`); no braces, or a key's hash tag is no longer its own. */
  readonly prefix?: string
  /** TTL of the node's heartbeat and of its names (default 6 s). */
  readonly nodeTtl?: Duration.DurationInput
  /** How often the node refreshes them (default 2 s; keep it under a third of `nodeTtl`). */
  readonly refreshInterval?: Duration.DurationInput
  /** How often a node looks for dead nodes (default 2 s). */
  readonly sweepInterval?: Duration.DurationInput
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultOptions = {
  prefix: "tether:",
  nodeTtl: Duration.seconds(6),
  refreshInterval: Duration.seconds(2),
  sweepInterval: Duration.seconds(2)
} as const

/**
 * The keys of presence. Per-node keys carry the node id as hash tag, a
 * name and a room their own.
 *
 * @since 0.2.0
 * @category keys
 */
export const keys = (prefix: string) => ({
  nodes: `${prefix}p:nodes`,
  alive: (node: string) => `${prefix}p:node:{${node}}:alive`,
  memberships: (node: string) => `${prefix}p:node:{${node}}:members`,
  names: (node: string) => `${prefix}p:node:{${node}}:names`,
  sweep: (node: string) => `${prefix}p:node:{${node}}:sweep`,
  name: (user: string) => `${prefix}p:name:{${user}}`,
  room: (room: string) => `${prefix}p:room:{${room}}`,
  changes: `${prefix}p:changes`
})

const SEPARATOR = "\u0000"
const millis = (input: Duration.DurationInput) => Duration.toMillis(Duration.decode(input))
const unavailable = (error: Redis.RedisError) => new Presence.PresenceUnavailable({ reason: error.message })

/** A change read from the channel; anything malformed is dropped. */
const parseChange = (message: string): { readonly node: string; readonly change: Presence.Change } | undefined => {
  try {
    const value = JSON.parse(message) as Record<string, unknown>
    const { node, _tag, room, user, reason } = value
    if (typeof node !== "string" || typeof room !== "string" || typeof user !== "string") return undefined
    if (_tag === "Joined") return { node, change: { _tag, room, user } }
    if (_tag === "Left" && typeof reason === "string") return { node, change: { _tag, room, user, reason } }
    return undefined
  } catch {
    return undefined
  }
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Presence.Presence["Type"], never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const me = options.nodeId
    const k = keys(options.prefix ?? defaultOptions.prefix)
    const ttl = String(millis(options.nodeTtl ?? defaultOptions.nodeTtl))
    const refreshInterval = options.refreshInterval ?? defaultOptions.refreshInterval
    const sweepInterval = options.sweepInterval ?? defaultOptions.sweepInterval
    const names = new Map<string, string>()
    const memberships = new Set<string>()
    const handlers = new Set<(room: string, user: string) => Effect.Effect<void>>()
    const pending = new Map<string, "release" | "leave" | "join">()
    let retryPending: Effect.Effect<void, Redis.RedisError> = Effect.void
    const many = { concurrency: 16, discard: true } as const

    const rejoin = (entry: string) => {
      const [room, user] = entry.split(SEPARATOR) as [string, string]
      return Effect.zipRight(
        redis.command(["SADD", k.memberships(me), entry]),
        redis.command(["HSET", k.room(room), user, me])
      )
    }

    const heartbeat: Effect.Effect<void, Redis.RedisError> = Effect.gen(function*() {
      const previous = yield* redis.command(["SET", k.alive(me), me, "PX", ttl, "GET"])
      yield* redis.command(["SADD", k.nodes, me])
      yield* Effect.forEach(names, ([user, session]) =>
        redis.eval(Scripts.claim, [k.name(user)], [session, ttl]).pipe(
          Effect.flatMap((held) =>
            held === 1
              ? Effect.asVoid(redis.command(["SADD", k.names(me), user + SEPARATOR + session]))
              : Effect.logWarning(`presence: the name ${user} was taken by another session while this node lost Redis`)
          )
        ), many)
      // The heartbeat key was gone: Redis restarted, or this node was
      // thought dead. Say again what this node holds.
      yield* Effect.suspend(() => retryPending)
      if (previous === null && memberships.size > 0) {
        yield* Effect.logWarning(`presence: node ${me} re-registers ${memberships.size} memberships`)
        yield* Effect.forEach(memberships, rejoin, many)
      }
    })

    const sweepNode = (node: string) =>
      Effect.gen(function*() {
        const entries = (yield* redis.command(["SMEMBERS", k.memberships(node)])) as ReadonlyArray<string>
        yield* Effect.forEach(entries, (entry) =>
          Effect.gen(function*() {
            const [room, user] = entry.split(SEPARATOR) as [string, string]
            const removed = yield* redis.eval(Scripts.leaveIf, [k.room(room)], [user, node])
            if (removed === 1) {
              RedisMetrics.membersLost.unsafeUpdate(1, [])
              for (const onLost of handlers) yield* onLost(room, user)
            }
            yield* redis.command(["SREM", k.memberships(node), entry])
          }), many)
        const held = (yield* redis.command(["SMEMBERS", k.names(node)])) as ReadonlyArray<string>
        yield* Effect.forEach(held, (entry) => {
          const [user, session] = entry.split(SEPARATOR) as [string, string]
          return Effect.zipRight(
            redis.eval(Scripts.deleteIf, [k.name(user)], [session]),
            redis.command(["SREM", k.names(node), entry])
          )
        }, many)
        if ((yield* redis.command(["EXISTS", k.alive(node)])) === 0) {
          yield* redis.command(["SREM", k.nodes, node])
        }
      }).pipe(Effect.asVoid)

    const sweep: Effect.Effect<void, Redis.RedisError> = Effect.gen(function*() {
      if (handlers.size === 0) return
      const nodes = (yield* redis.command(["SMEMBERS", k.nodes])) as ReadonlyArray<string>
      for (const node of nodes) {
        if (node === me || (yield* redis.command(["EXISTS", k.alive(node)])) === 1) continue
        const lock = yield* redis.command(["SET", k.sweep(node), me, "NX", "PX", String(Number(ttl) * 2)])
        if (lock !== "OK") continue
        yield* Effect.logInfo(`presence: node ${node} is lost; ${me} releases its members`)
        yield* sweepNode(node).pipe(Effect.ensuring(Effect.ignore(redis.eval(Scripts.deleteIf, [k.sweep(node)], [me]))))
      }
    })

    // One log line when a loop starts failing and one when it recovers, not one per interval.
    const every = (interval: Duration.DurationInput, name: string, effect: Effect.Effect<void, Redis.RedisError>) => {
      let failing = false
      return effect.pipe(
        Effect.zipRight(Effect.suspend(() => {
          if (!failing) return Effect.void
          failing = false
          return Effect.logInfo(`presence ${name} works again`)
        })),
        Effect.catchAll((error) => {
          if (failing) return Effect.void
          failing = true
          return Effect.logWarning(`presence ${name} failed (retrying every ${Duration.format(interval)})`, error)
        }),
        Effect.schedule(Schedule.spaced(interval)),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    // Graceful end: this node's names and memberships go with it, and no
    // other node announces them as lost.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.forEach(memberships, (entry) => {
          const [room, user] = entry.split(SEPARATOR) as [string, string]
          return redis.eval(Scripts.leaveIf, [k.room(room)], [user, me])
        }, many)
        yield* Effect.forEach(names, ([user, session]) => redis.eval(Scripts.deleteIf, [k.name(user)], [session]), many)
        yield* redis.command(["DEL", k.memberships(me), k.names(me)])
        yield* redis.command(["SREM", k.nodes, me])
        yield* redis.command(["DEL", k.alive(me)])
      }).pipe(Effect.catchAll((error) => Effect.logWarning("presence: graceful release failed", error)))
    )
    // Registered before the layer is up; an unreachable Redis is retried by the loop.
    yield* heartbeat.pipe(Effect.catchAll((error) => Effect.logWarning("presence: first heartbeat failed", error)))
    yield* every(refreshInterval, "heartbeat", heartbeat)
    yield* every(sweepInterval, "sweep", sweep)

    const claim = (user: string, session: string) =>
      redis.eval(Scripts.claim, [k.name(user)], [session, ttl]).pipe(
        Effect.flatMap((held) =>
          held === 1
            ? Effect.as(
              Effect.zipRight(
                redis.command(["SADD", k.names(me), user + SEPARATOR + session]),
                Effect.sync(() => names.set(user, session))
              ),
              true
            )
            : Effect.succeed(false)
        ),
        Effect.mapError(unavailable)
      )

    // A release, leave or join that failed (Redis unreachable) is retried by
    // the heartbeat until it succeeds: otherwise the name would stay held (the
    // heartbeat refreshed it), the member listed or missing in `members`, for
    // as long as the node lives.
    const releaseNow = (user: string, session: string) =>
      Effect.zipRight(
        redis.eval(Scripts.deleteIf, [k.name(user)], [session]),
        redis.command(["SREM", k.names(me), user + SEPARATOR + session])
      )
    const leaveNow = (room: string, user: string) =>
      Effect.zipRight(
        redis.eval(Scripts.leaveIf, [k.room(room)], [user, me]),
        redis.command(["SREM", k.memberships(me), room + SEPARATOR + user])
      )
    retryPending = Effect.forEach(pending, ([key, op]) => {
      const [a, b] = key.slice(1).split(SEPARATOR) as [string, string]
      // A leave of a room joined again since is void, and a join of a room left since.
      const member = memberships.has(a + SEPARATOR + b)
      const retry: Effect.Effect<unknown, Redis.RedisError> = op === "leave"
        ? (member ? Effect.void : leaveNow(a, b))
        : op === "join"
        ? (member ? rejoin(a + SEPARATOR + b) : Effect.void)
        : releaseNow(a, b)
      return retry.pipe(
        Effect.zipRight(Effect.sync(() => pending.delete(key)))
      )
    }, many)

    const release = (user: string, session: string) =>
      Effect.suspend(() => {
        if (names.get(user) === session) names.delete(user)
        return releaseNow(user, session).pipe(
          Effect.tapError(() => Effect.sync(() => pending.set("N" + user + SEPARATOR + session, "release")))
        )
      }).pipe(Effect.asVoid, Effect.mapError(unavailable))

    const join = (room: string, user: string) =>
      Effect.suspend(() => {
        memberships.add(room + SEPARATOR + user)
        return rejoin(room + SEPARATOR + user).pipe(
          Effect.tapError(() => Effect.sync(() => pending.set("J" + room + SEPARATOR + user, "join")))
        )
      }).pipe(Effect.asVoid, Effect.mapError(unavailable))

    const leave = (room: string, user: string) =>
      Effect.suspend(() => {
        memberships.delete(room + SEPARATOR + user)
        return leaveNow(room, user).pipe(
          Effect.tapError(() => Effect.sync(() => pending.set("L" + room + SEPARATOR + user, "leave")))
        )
      }).pipe(Effect.asVoid, Effect.mapError(unavailable))

    const members = (room: string, options?: { readonly limit?: number }) =>
      redis.command(["HKEYS", k.room(room)]).pipe(
        Effect.map((reply) => {
          const sorted = [...(reply as ReadonlyArray<string>)].sort()
          return options?.limit === undefined ? sorted : sorted.slice(0, options.limit)
        }),
        Effect.mapError(unavailable)
      )

    const lost = (onLost: (room: string, user: string) => Effect.Effect<void>) =>
      Effect.acquireRelease(
        Effect.sync(() => handlers.add(onLost)),
        () => Effect.sync(() => handlers.delete(onLost))
      ).pipe(Effect.asVoid)

    // Joined / Left notices between nodes: one channel for the cluster (they
    // are rare beside lines; each node drops those of rooms it has no members
    // in), tagged with the announcing node so it skips its own.
    const announce = (change: Presence.Change) =>
      redis.command(["PUBLISH", k.changes, JSON.stringify({ node: me, ...change })]).pipe(
        Effect.asVoid,
        Effect.mapError(unavailable)
      )

    const changes = (onChange: (change: Presence.Change) => void) =>
      redis.subscribe(k.changes, (message) => {
        const change = parseChange(message)
        if (change !== undefined && change.node !== me) onChange(change.change)
      }).pipe(
        Effect.tapError((error) => Effect.logWarning("presence: cannot subscribe to changes (retrying)", error)),
        Effect.retry(Schedule.spaced(refreshInterval)),
        Effect.orDie,
        Effect.forkScoped,
        Effect.asVoid
      )

    return Presence.Presence.of({ claim, release, join, leave, members, lost, announce, changes })
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Presence.Presence, never, Redis.Redis> =>
  Layer.scoped(Presence.Presence, make(options))
