/**
 * `Cluster.layer`'s body: History and Presence on Redis (node-redis), each
 * node's summary (`RedisNodes`, as `Cluster.Nodes`) and the `redis` health check, in a module of its own so that a server without
 * `--redis` does not load the Redis client.
 */
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisNodes from "@tether/redis/RedisNodes"
import * as RedisPresence from "@tether/redis/RedisPresence"
import * as Health from "@tether/runtime/Health"
import type * as History from "@tether/runtime/History"
import type * as Presence from "@tether/runtime/Presence"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cluster from "./Cluster.js"

/**
 * History and Presence on Redis, each node's summary, and the `redis` health check. Fails with
 * `RedisError` (`Unavailable`) when Redis cannot be reached at start, `Unsupported` when it is
 * older than the history's scripts need (6.2).
 */
export const layer = (
  options: Cluster.Options
): Layer.Layer<History.History | Presence.Presence | Cluster.Nodes, Redis.RedisError, Health.Health> => {
  const prefix = options.prefix !== undefined ? { prefix: options.prefix } : {}
  const check = Layer.scopedDiscard(Effect.gen(function*() {
    // Too old a Redis fails the start with a clear message, not every Say later.
    yield* RedisHistory.checkVersion
    const health = yield* Health.Health
    const redis = yield* Redis.Redis
    yield* health.register(
      "redis",
      redis.command(["PING"]).pipe(Effect.asVoid, Effect.mapError((error) => `unreachable: ${error.message}`))
    )
  }))
  return Layer.mergeAll(
    RedisHistory.layer(prefix),
    RedisPresence.layer({ ...prefix, nodeId: options.nodeId }),
    Layer.effect(Cluster.Nodes, RedisNodes.RedisNodes).pipe(Layer.provide(RedisNodes.layer({
      ...prefix,
      nodeId: options.nodeId,
      ...(options.summaryInterval !== undefined ? { interval: options.summaryInterval } : {})
    }))),
    check
  ).pipe(Layer.provide(Redis.layer({ url: options.url, name: `tether-${options.nodeId}` })))
}
