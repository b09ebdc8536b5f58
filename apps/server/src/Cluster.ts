/**
 * Cluster mode (`--redis`): chat's `History` and `Presence` on Redis, so any
 * number of tether-server processes serve one set of rooms, and a `/healthz`
 * check that says not ready while Redis cannot be reached.
 */
import type * as Dashboard from "@tether/node/Dashboard"
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisNodes from "@tether/redis/RedisNodes"
import * as RedisPresence from "@tether/redis/RedisPresence"
import * as Health from "@tether/runtime/Health"
import type * as History from "@tether/runtime/History"
import type * as Presence from "@tether/runtime/Presence"
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Modes from "./Modes.js"

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
  /** How often this node publishes its summary (default `RedisNodes.defaultOptions.interval`, 2 s). */
  readonly summaryInterval?: Duration.DurationInput | undefined
}

/**
 * History and Presence on Redis, each node's summary for the dashboards
 * (`RedisNodes`), and the `redis` health check. Fails with
 * `RedisError` (`Unavailable`) when Redis cannot be reached at start.
 */
export const layer = (
  options: Options
): Layer.Layer<History.History | Presence.Presence | RedisNodes.RedisNodes, Redis.RedisError, Health.Health> => {
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
    RedisNodes.layer({
      ...prefix,
      nodeId: options.nodeId,
      ...(options.summaryInterval !== undefined ? { interval: options.summaryInterval } : {})
    }),
    check
  ).pipe(Layer.provide(Redis.layer({ url: options.url, name: `tether-${options.nodeId}` })))
}

/** Publishes this node's summary (connections, messages per second) while the scope is open: cluster mode only. */
export const publishSummary = (running: Modes.Running): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(RedisNodes.RedisNodes), (nodes) =>
    Option.isNone(nodes) ? Effect.void : nodes.value.publish(() => ({
      connections: running.connections(),
      framesIn: running.stats.framesIn,
      framesOut: running.stats.framesOut
    })))

/** The dashboard's per-node rows, read from every node's summary: cluster mode only (undefined otherwise). */
export const dashboardNodes: Effect.Effect<Dashboard.SamplerOptions["nodes"]> = Effect.map(
  Effect.serviceOption(RedisNodes.RedisNodes),
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
