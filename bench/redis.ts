/**
 * Cluster mode's History path on Redis: publish -> deliver latency (p50 /
 * p99) to a subscriber on the publishing node and on another node, the
 * acknowledgement latency of the Lua publish alone, lines/s through the Lua
 * path with many publishes in flight, and `redis-benchmark` for the commands
 * that path uses (EVALSHA of the publish script, XADD, PUBLISH) as the
 * ceiling. Both nodes run in this process, each with its own connections.
 * Bounded: fixed counts, each phase capped in time. Uses `REDIS_URL`
 * (default redis://127.0.0.1:6379) under a key prefix of its own, deleted at
 * the end.
 *
 *   node bench/build/redis.js
 */
import * as Redis from "@tether/redis/Redis"
import * as LocalRedis from "@tether/testing/LocalRedis"
import { publishArgs, redisBenchmark } from "./redisCeiling.js"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as History from "@tether/runtime/History"
import { randomBytes } from "node:crypto"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const prefix = `bench:${randomBytes(4).toString("hex")}:`
const latencyLines = 2_000
const throughputLines = 50_000
const inFlight = 64
const phaseCap = 8_000

const node = Layer.build(RedisHistory.layer({ prefix }).pipe(Layer.provide(Redis.layer({ url })))).pipe(
  Effect.map(Context.get(History.History))
)

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const summary = (samples: Array<number>) => {
  const sorted = samples.sort((a, b) => a - b)
  return `p50 ${(percentile(sorted, 0.5) * 1000).toFixed(0)} us, p99 ${(percentile(sorted, 0.99) * 1000).toFixed(0)} us`
}

const program = Effect.gen(function*() {
  const a = yield* node
  const b = yield* node
  const redis = yield* Redis.make({ url })

  // Latency: one line at a time; each payload carries its send time.
  const same: Array<number> = []
  const cross: Array<number> = []
  const acks: Array<number> = []
  let arrived: (() => void) | undefined
  const latency = (into: Array<number>): History.Deliver => (_room, _epoch, entry) => {
    into.push(performance.now() - Number(entry.payload.slice(0, entry.payload.indexOf("|"))))
    if (same.length === cross.length) arrived?.()
  }
  yield* a.subscribe("latency", latency(same))
  yield* b.subscribe("latency", latency(cross))
  const latencyStart = performance.now()
  for (let i = 0; i < latencyLines && performance.now() - latencyStart < phaseCap; i++) {
    const sent = performance.now()
    const both = Effect.async<void>((resume) => {
      arrived = () => resume(Effect.void)
      if (same.length > i && cross.length > i) resume(Effect.void)
    })
    yield* a.publish("latency", (position) => `${sent}|{"offset":${position.offset},"text":"hello"}`)
    acks.push(performance.now() - sent)
    yield* both
  }

  // Throughput: `inFlight` publishes at a time, one subscriber on the other node.
  let delivered = 0
  yield* b.subscribe("throughput", () => {
    delivered++
  })
  const payload = "x".repeat(64)
  const throughputStart = performance.now()
  let published = 0
  yield* Effect.forEach(
    Array.from({ length: inFlight }),
    () =>
      Effect.gen(function*() {
        while (published < throughputLines && performance.now() - throughputStart < phaseCap) {
          published++
          yield* a.publish("throughput", (position) => `{"offset":${position.offset},"text":"${payload}"}`)
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
  const acked = performance.now() - throughputStart
  while (delivered < published && performance.now() - throughputStart < phaseCap * 2) yield* Effect.sleep("5 millis")
  const all = performance.now() - throughputStart

  console.log(`History on Redis (${url}), two nodes in one process`)
  console.log(`  Lua publish acknowledged:            ${summary(acks)} (${acks.length} lines, one at a time)`)
  console.log(`  publish -> deliver, same node:       ${summary(same)}`)
  console.log(`  publish -> deliver, cross node:      ${summary(cross)}`)
  console.log(
    `  lines/s through the Lua path:        ${(published / (acked / 1000)).toFixed(0)} acked, ${
      (delivered / (all / 1000)).toFixed(0)
    } delivered (${published} lines, ${inFlight} in flight, 64 B text)`
  )

  // The ceiling: Redis itself, for the commands of the publish path.
  const meta = RedisHistory.keys(`${prefix}rb:`, "room")
  const sha = (yield* redis.command(["SCRIPT", "LOAD", RedisHistory.scripts.publish.lua])) as string
  const bench = redisBenchmark(url, 50_000)
  console.log("redis-benchmark (50 clients, no pipelining), the ceiling:")
  console.log(`  EVALSHA publish script: ${bench(publishArgs(sha, meta, 1, payload))}`)
  console.log(`  XADD MAXLEN 1000:       ${bench(["XADD", `${meta.stream}:x`, "MAXLEN", "1000", "*", "p", payload])}`)
  console.log(`  PUBLISH:                ${bench(["PUBLISH", meta.channel, payload])}`)
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.ensuring(LocalRedis.cleanup(prefix, url)))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
