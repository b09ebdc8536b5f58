/**
 * `Cluster.layer`'s body: History and Presence on Redis (node-redis) and the
 * `redis` health check, in a module of its own so that a server without
 * `--redis` does not load the Redis client.
 */
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisPresence from "@tether/redis/RedisPresence"
import * as Health from "@tether/runtime/Health"
import type * as History from "@tether/runtime/History"
import type * as Presence from "@tether/runtime/Presence"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Cluster from "./Cluster.js"

/**
 * History and Presence on Redis, and the `redis` health check. Fails with
 * `RedisError` (`Unavailable`) when Redis cannot be reached at start.
 */
export const layer = (options: Cluster.Options): Layer.Layer<History.History | Presence.Presence, Redis.RedisError, Health.Health> => {
  const prefix = options.prefix !== undefined ? { prefix: options.prefix } : {}
  const check = Layer.scopedDiscard(Effect.gen(function*() {
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
    check
  ).pipe(Layer.provide(Redis.layer({ url: options.url, name: `tether-${options.nodeId}` })))
}
