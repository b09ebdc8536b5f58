/**
 * Cluster mode (`--redis`): chat's `History` and `Presence` on Redis, so any
 * number of tether-server processes serve one set of rooms, and a `/healthz`
 * check that says not ready while Redis cannot be reached. The Redis client
 * and layers (`ClusterLayer.ts`) are imported only when `--redis` is given.
 */
import type * as Dashboard from "@tether/node/Dashboard"
import type * as Redis from "@tether/redis/Redis"
import type * as RedisNodes from "@tether/redis/RedisNodes"
import type * as Health from "@tether/runtime/Health"
import type * as History from "@tether/runtime/History"
import type * as Presence from "@tether/runtime/Presence"
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Modes from "./Modes.js"

/** What `--node-id` may be: printable, short, usable inside a Redis key. */
export const nodeIdPattern = /^[A-Za-z0-9._:-]{1,64}$/

/**
 * What `--redis-prefix` may be: no braces (each room's keys carry the room as
 * their Redis Cluster hash tag, which must be the first `{...}` of the key),
 * no spaces, short.
 */
export const redisPrefixPattern = /^[A-Za-z0-9._:/-]{0,100}$/

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
  /** How often this node publishes its summary (default `RedisNodes.defaultOptions.interval`, 2 s). */
  readonly summaryInterval?: Duration.DurationInput | undefined
}

/**
 * Every node's summary (`RedisNodes`), as the app holds it: a tag of its own
 * so that a server without `--redis` does not load the Redis client to ask
 * whether it has one.
 */
export class Nodes extends Context.Tag("tether-server/Cluster/Nodes")<Nodes, RedisNodes.RedisNodes["Type"]>() {}

/**
 * History and Presence on Redis, each node's summary for the dashboards
 * (`Nodes`), and the `redis` health check. Fails with `RedisError`
 * (`Unavailable`) when Redis cannot be reached at start.
 */
export const layer = (
  options: Options
): Layer.Layer<History.History | Presence.Presence | Nodes, Redis.RedisError, Health.Health> =>
  Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./ClusterLayer.js")), (cluster) => cluster.layer(options)))

/** Publishes this node's summary (connections, messages per second) while the scope is open: cluster mode only. */
export const publishSummary = (running: Modes.Running): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(Nodes), (nodes) =>
    Option.isNone(nodes) ? Effect.void : nodes.value.publish(() => ({
      connections: running.connections(),
      framesIn: running.stats.framesIn,
      framesOut: running.stats.framesOut
    })))

/** The dashboard's per-node rows, read from every node's summary: cluster mode only (undefined otherwise). */
export const dashboardNodes: Effect.Effect<Dashboard.SamplerOptions["nodes"]> = Effect.map(
  Effect.serviceOption(Nodes),
  (nodes) =>
    Option.isNone(nodes) ? undefined : Effect.zipWith(nodes.value.list, Clock.currentTimeMillis, (summaries, now) =>
      summaries.map((s): Dashboard.NodeRow => ({
        node: s.node,
        connections: s.connections,
        messagesInPerSecond: s.messagesInPerSecond,
        messagesOutPerSecond: s.messagesOutPerSecond,
        lastSeenAgoMs: Math.max(0, now - s.at)
      })))
)
