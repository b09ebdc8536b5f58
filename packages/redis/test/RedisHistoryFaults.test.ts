import { assert, describe, it } from "@effect/vitest"
import * as RedisMetrics from "@tether/redis/RedisMetrics"
import type * as History from "@tether/runtime/History"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import { historyNode, line, recorder } from "./fixtures/nodes.js"
import * as Proxy from "./fixtures/Proxy.js"
import * as Fixtures from "./fixtures/redis.js"
import * as RedisServer from "@tether/testing/RedisServer"

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("RedisHistory faults", () => {
  it.live("a node cut off from Redis mid-publish fails its own publishes typed, then fills the gap: 1..N once", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const proxy = yield* Proxy.make(Fixtures.url)
      const a = yield* historyNode({ prefix }, proxy.url)
      const b = yield* historyNode({ prefix })
      const seen = recorder()
      yield* a.subscribe("r", seen.deliver)
      const filledBefore = (yield* Metric.value(RedisMetrics.gapFilled)).count
      for (const i of range(1, 30)) yield* b.publish("r", line(`${i}`))
      yield* Fixtures.eventually(() => seen.seen.length === 30)
      yield* proxy.cut
      const refused = yield* Effect.either(a.publish("r", line("from a while cut")))
      assert(Either.isLeft(refused))
      assert.strictEqual(refused.left._tag, "HistoryUnavailable")
      const notSubscribed = yield* Effect.either(Effect.scoped(a.subscribe("other", recorder().deliver)))
      assert(Either.isLeft(notSubscribed))
      assert.strictEqual(notSubscribed.left._tag, "HistoryUnavailable")
      const notRecovered = yield* Effect.either(a.recover("r", { epoch: "e", offset: 0 }))
      assert.strictEqual(Either.isLeft(notRecovered) && notRecovered.left._tag, "HistoryUnavailable")
      for (const i of range(31, 60)) yield* b.publish("r", line(`${i}`))
      yield* Effect.sleep("200 millis")
      assert.strictEqual(seen.seen.length, 30)
      yield* proxy.restore
      // An idle room: the reconnect alone makes the node read what it missed.
      yield* Fixtures.eventually(() => seen.seen.length === 60)
      for (const i of range(61, 80)) yield* b.publish("r", line(`${i}`))
      yield* Fixtures.eventually(() => seen.seen.length >= 80)
      yield* Effect.sleep("100 millis")
      assert.deepStrictEqual(seen.seen.map((s) => s.entry.offset), range(1, 80))
      assert.deepStrictEqual(seen.seen.map((s) => JSON.parse(s.entry.payload).text), range(1, 80).map(String))
      assert.isAtLeast((yield* Metric.value(RedisMetrics.gapFilled)).count - filledBefore, 30)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("Redis killed and restarted mid-publish: typed failures while down, nothing acked lost, the new epoch reported", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const prefix = Fixtures.prefix()
      const a = yield* historyNode({ prefix }, server.url)
      const b = yield* historyNode({ prefix }, server.url)
      const seen = recorder()
      yield* a.subscribe("r", seen.deliver)
      const acked: Array<History.Position> = []
      const failures: Array<string> = []
      const publishOne = (i: number) =>
        b.publish("r", line(`${i}`)).pipe(
          Effect.match({
            onFailure: (error) => void failures.push(error._tag),
            onSuccess: (position) => void acked.push(position)
          })
        )
      let i = 0
      while (acked.length < 40) yield* publishOne(++i)
      yield* server.kill
      for (let n = 0; n < 20; n++) yield* publishOne(++i)
      assert.isAtLeast(failures.length, 20)
      assert.deepStrictEqual([...new Set(failures)], ["HistoryUnavailable"])
      yield* server.start
      // No manual step: the services reconnect, publishes succeed again.
      const before = acked.length
      for (let n = 0; n < 400 && acked.length < before + 40; n++) {
        yield* publishOne(++i)
        yield* Effect.sleep("5 millis")
      }
      assert.strictEqual(acked.length, before + 40)
      const [first, second] = [...new Set(acked.map((p) => p.epoch))]
      assert.notStrictEqual(first, second)
      assert.deepStrictEqual(acked.filter((p) => p.epoch === first).map((p) => p.offset), range(1, 40))
      assert.deepStrictEqual(acked.filter((p) => p.epoch === second).map((p) => p.offset), range(1, 40))
      yield* Fixtures.eventually(() => seen.seen.length >= 80)
      yield* Effect.sleep("100 millis")
      // The subscriber saw the old epoch in order, then the new one from 1:
      // every acknowledged line, none twice, none invented.
      const delivered = seen.seen.map((s) => `${s.epoch}/${s.entry.offset}`)
      assert.deepStrictEqual(delivered, [
        ...range(1, 40).map((o) => `${first}/${o}`),
        ...range(1, 40).map((o) => `${second}/${o}`)
      ])
    }).pipe(Effect.scoped))
})
