/**
 * Cluster mode through a fault-injecting proxy: two in-process chat nodes on
 * the machine's Redis, each behind a proxy that cuts connections at random
 * points (mid-frame included) on a seeded FastCheck schedule, and ChatClients
 * given both nodes' proxied addresses, so every drop moves a client to the
 * other node (the client's multi-address failover). Afterwards every client's
 * transcript of each room is the room's history in Redis: the same sequence
 * everywhere, no gap, no duplicate, every acknowledged line in it, every typed
 * line exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as ChatClient from "@tether/runtime/ChatClient"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as History from "@tether/runtime/History"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as C from "./fixtures/Cluster.js"
import * as FaultProxy from "@tether/node/FaultProxy"
import * as Transcripts from "@tether/testing/Transcripts"

const rooms = ["#lobby", "#ops"] as const
const clientCount = 4
const linesEach = 12

const run = (schedules: readonly [ReadonlyArray<FaultProxy.Cut>, ReadonlyArray<FaultProxy.Cut>]) =>
  Effect.gen(function*() {
    const keyPrefix = C.prefix()
    yield* Effect.addFinalizer(() => Effect.promise(() => C.cleanup(keyPrefix)))
    const ports = [
      yield* C.node({ nodeId: "n0", prefix: keyPrefix }),
      yield* C.node({ nodeId: "n1", prefix: keyPrefix })
    ]
    const proxies = [yield* FaultProxy.make({ port: ports[0]! }, schedules[0]), yield* FaultProxy.make({ port: ports[1]! }, schedules[1])]
    const history = yield* Layer.build(
      RedisHistory.layer({ prefix: keyPrefix }).pipe(Layer.provide(Redis.layer({ url: C.url })))
    ).pipe(Effect.map(Context.get(History.History)))

    const clients: Array<Transcripts.Transcript> = []
    for (let i = 0; i < clientCount; i++) {
      // Half start on each node; a drop moves a client to the other one.
      const first = i % 2
      const chat = yield* ChatClient.make({
        connect: [first, 1 - first].map((n) => NodeTether.connect({ port: proxies[n]!.port, connectTimeout: "2 seconds" })),
        user: `u${i}`,
        password: "secret",
        heartbeat: Heartbeat.answer({ timeout: "60 seconds" }),
        reconnect: { schedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(1_000))) }
      })
      clients.push(yield* Transcripts.record(chat, rooms))
    }
    // Everyone in both rooms before anyone speaks (a join cut off before its answer is asked again).
    const inBoth = yield* Transcripts.joinAll(clients, "#ops")
    assert.isTrue(inBoth, `every client joined #ops (trouble: ${JSON.stringify(clients.map((c) => c.trouble))})`)
    // Each says its lines, alternating rooms, paced so that drops fall among them.
    yield* Transcripts.sayLines(clients, linesEach, rooms)
    for (const { chat } of clients) yield* chat.awaitDrained.pipe(Effect.timeout("15 seconds"))

    const histories = yield* Transcripts.histories(history, rooms)
    for (const room of rooms) assert.isDefined(histories.get(room), `${room}'s history recovered`)
    const settled = yield* Transcripts.settled(clients, histories)
    const inHistory = new Set([...histories.get("#lobby")!, ...histories.get("#ops")!])
    for (const [i, c] of clients.entries()) {
      assert.deepStrictEqual(c.trouble, [], `u${i} saw no gap, refusal or unrecoverable room`)
      for (const room of rooms) assert.deepStrictEqual(c.said.get(room), histories.get(room), `u${i}'s transcript of ${room}`)
      const acked = new Set(c.acked.map((id) => c.typed.get(id) ?? `unknown id ${id}`))
      assert.strictEqual(acked.size, linesEach, `u${i}'s lines all acknowledged`)
      for (const line of acked) assert.isTrue(inHistory.has(line), `acknowledged ${line} is in the history`)
    }
    assert.isTrue(settled)
    const typed = clients.flatMap((_, i) => Array.from({ length: linesEach }, (_, k) => `u${i}-${k}`)).sort()
    assert.deepStrictEqual([...histories.get("#lobby")!, ...histories.get("#ops")!].sort(), typed, "each typed line once")
    return proxies[0]!.cuts() + proxies[1]!.cuts()
  })

describe("Cluster through a fault-injecting proxy", () => {
  it.live.prop(
    "two nodes, clients failing over between them through random drops: every transcript is the Redis history, no gap, no duplicate",
    [FaultProxy.arbitrarySchedule(6, 3_000), FaultProxy.arbitrarySchedule(6, 3_000)],
    ([a, b]) => Effect.scoped(run([a, b])).pipe(Effect.asVoid),
    { timeout: 60_000, fastCheck: { numRuns: 2, seed: 14 } }
  )
})
