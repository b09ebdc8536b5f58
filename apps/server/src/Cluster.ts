/**
 * Cluster mode (`--redis`): chat's `History` and `Presence` on Redis, so any
 * number of tether-server processes serve one set of rooms, and a `/healthz`
 * check that says not ready while Redis cannot be reached. The Redis client
 * and layers (`ClusterLayer.ts`) are imported only when `--redis` is given.
 */
import type * as Redis from "@tether/redis/Redis"
import type * as Health from "@tether/runtime/Health"
import type * as History from "@tether/runtime/History"
import type * as Presence from "@tether/runtime/Presence"
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** What `--node-id` may be: printable, short, usable inside a Redis key. */
export const nodeIdPattern = /^[A-Za-z0-9._:-]{1,64}$/

/** hostname-pid-random: unique per process, readable in logs and `CLIENT LIST`. */
export const defaultNodeId = (): string => {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, "_").slice(0, 40) || "node"
  return `${host}-${process.pid}-${randomBytes(3).toString("hex")}`
}

/** The URL without its password, for messages. */
export const redact = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparsable URL)"
  }
}

export interface Options {
  readonly url: string
  readonly nodeId: string
  /** Prefix of every key (default `tether:`): two clusters may share one Redis. */
  readonly prefix?: string | undefined
}

/**
 * History and Presence on Redis, and the `redis` health check. Fails with
 * `RedisError` (`Unavailable`) when Redis cannot be reached at start.
 */
export const layer = (options: Options): Layer.Layer<History.History | Presence.Presence, Redis.RedisError, Health.Health> =>
  Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./ClusterLayer.js")), (cluster) => cluster.layer(options)))
