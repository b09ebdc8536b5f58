/**
 * Each node's own small summary (connections, messages per second in and
 * out) in Redis, for the operators' view of a cluster: a node publishes its
 * summary every interval under a key of its own (hash tag: the node id) with
 * a TTL, and lists itself in a sorted set; any node reads every summary back.
 * A node that stops publishing drops out once its key expires (the reader
 * also removes it from the set); a node that stops cleanly deletes its key.
 *
 * @example
 * ```ts
 * import * as Redis from "@tether/redis/Redis"
 * import * as RedisNodes from "@tether/redis/RedisNodes"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const nodes = yield* RedisNodes.make({ nodeId: "node-a" })
 *   yield* nodes.publish(() => ({ connections: 3, framesIn: 120, framesOut: 480 }))
 *   return yield* nodes.list
 * }).pipe(Effect.scoped, Effect.provide(Redis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Redis from "./Redis.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** This node's id, unique in the cluster. */
  readonly nodeId: string
  /** Prefix of every key (default `tether:`); no braces, or a key's hash tag is no longer its own. */
  readonly prefix?: string
  /** TTL of a published summary (default 6 s). */
  readonly ttl?: Duration.DurationInput
  /** How often a node publishes (default 2 s; keep it under half the TTL). */
  readonly interval?: Duration.DurationInput
  /** Most nodes listed (default 64): the list stays bounded. */
  readonly maxNodes?: number
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultOptions = {
  prefix: "tether:",
  ttl: Duration.seconds(6),
  interval: Duration.seconds(2),
  maxNodes: 64
} as const

/**
 * A node's running totals, read at each publish: rates come from the
 * difference between two reads.
 *
 * @since 0.2.0
 * @category models
 */
export interface Totals {
  readonly connections: number
  readonly framesIn: number
  readonly framesOut: number
}

/**
 * A node's summary as published; `at` is the publisher's clock (epoch ms).
 *
 * @since 0.2.0
 * @category models
 */
export interface Summary {
  readonly node: string
  readonly connections: number
  readonly messagesInPerSecond: number
  readonly messagesOutPerSecond: number
  readonly at: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** Publishes `totals()` every interval until the scope closes (then deletes this node's summary). */
  readonly publish: (totals: () => Totals | undefined) => Effect.Effect<void, never, Scope.Scope>
  /** Every live node's summary (the `maxNodes` most recently published), ordered by node id. */
  readonly list: Effect.Effect<ReadonlyArray<Summary>, Redis.RedisError>
}

/**
 * @since 0.2.0
 * @category services
 */
export class RedisNodes extends Context.Tag("@tether/redis/RedisNodes")<RedisNodes, Service>() {}

/**
 * The keys: the set of node ids (scored by last publish) and one summary per
 * node, its id as hash tag.
 *
 * @since 0.2.0
 * @category keys
 */
export const keys = (prefix: string) => ({
  index: `${prefix}n:nodes`,
  summary: (node: string) => `${prefix}n:node:{${node}}:summary`
})

const finite = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0)

/** A summary read back; anything malformed is dropped. */
const parse = (text: string): Summary | undefined => {
  try {
    const value = JSON.parse(text) as Record<string, unknown>
    if (typeof value.node !== "string") return undefined
    return {
      node: value.node,
      connections: finite(value.connections),
      messagesInPerSecond: finite(value.messagesInPerSecond),
      messagesOutPerSecond: finite(value.messagesOutPerSecond),
      at: finite(value.at)
    }
  } catch {
    return undefined
  }
}

const round = (value: number) => Math.round(value * 100) / 100

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, never, Redis.Redis> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const clock = yield* Effect.clock
    const me = options.nodeId
    const k = keys(options.prefix ?? defaultOptions.prefix)
    const ttl = Duration.toMillis(Duration.decode(options.ttl ?? defaultOptions.ttl))
    const interval = options.interval ?? defaultOptions.interval
    const maxNodes = Math.max(1, Math.floor(options.maxNodes ?? defaultOptions.maxNodes))

    const publish = (totals: () => Totals | undefined): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function*() {
        let previous: Totals | undefined
        let previousAt = 0
        const once = Effect.suspend((): Effect.Effect<void, Redis.RedisError> => {
          const current = totals()
          if (current === undefined) return Effect.void
          const now = clock.unsafeCurrentTimeMillis()
          const seconds = Math.max(1e-3, (now - previousAt) / 1000)
          const rate = (a: number, b: number | undefined) => (b === undefined ? 0 : round(Math.max(0, a - b) / seconds))
          const summary: Summary = {
            node: me,
            connections: current.connections,
            messagesInPerSecond: rate(current.framesIn, previous?.framesIn),
            messagesOutPerSecond: rate(current.framesOut, previous?.framesOut),
            at: now
          }
          previous = current
          previousAt = now
          return Effect.zipRight(
            redis.command(["SET", k.summary(me), JSON.stringify(summary), "PX", String(ttl)]),
            Effect.asVoid(redis.command(["ZADD", k.index, String(now), me]))
          )
        })
        yield* Effect.addFinalizer(() =>
          Effect.ignore(Effect.zipRight(redis.command(["DEL", k.summary(me)]), redis.command(["ZREM", k.index, me])))
        )
        // A failed publish (Redis away) is retried at the next interval; the summary expires meanwhile.
        yield* Effect.forkScoped(Effect.repeat(Effect.ignore(once), Schedule.spaced(interval)))
      })

    const list: Effect.Effect<ReadonlyArray<Summary>, Redis.RedisError> = Effect.gen(function*() {
      const ids = (yield* redis.command(["ZREVRANGE", k.index, "0", String(maxNodes - 1)])) as ReadonlyArray<string>
      const texts = yield* Effect.forEach(ids, (id) => redis.command(["GET", k.summary(id)]), { concurrency: 16 })
      const out: Array<Summary> = []
      const gone: Array<string> = []
      texts.forEach((text, i) => {
        const summary = typeof text === "string" ? parse(text) : undefined
        if (summary === undefined) gone.push(ids[i]!)
        else out.push(summary)
      })
      // Summaries that expired: their nodes stopped publishing.
      if (gone.length > 0) yield* Effect.ignore(redis.command(["ZREM", k.index, ...gone]))
      return out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    })

    return { publish, list }
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RedisNodes, never, Redis.Redis> =>
  Layer.effect(RedisNodes, make(options))
