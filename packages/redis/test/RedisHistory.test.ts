import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as MetricState from "effect/MetricState"
import * as Schedule from "effect/Schedule"
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisMetrics from "@tether/redis/RedisMetrics"
import * as Fixtures from "./fixtures/redis.js"
import { historyNode, line, recorder } from "./fixtures/nodes.js"

const commands = RedisMetrics.roundTrips.pipe(Metric.tagged("connection", "command"))
const calls = (state: MetricState.MetricState.Counter<number>) => state.count
const offsets = (seen: ReturnType<typeof recorder>["seen"]) => seen.map((s) => s.entry.offset)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("RedisHistory", () => {
  it.live("three nodes publishing concurrently to two rooms: every subscriber sees one order, 1..N", () => {
    const prefix = Fixtures.prefix()
    const perNode = 40
    return Effect.gen(function*() {
      const nodes = yield* Effect.all([1, 2, 3].map(() => historyNode({ prefix })))
      const rooms = ["lobby", "dev"]
      const recorders = new Map<string, Array<ReturnType<typeof recorder>>>()
      for (const room of rooms) {
        const perRoom = nodes.map(() => recorder())
        recorders.set(room, perRoom)
        yield* Effect.forEach(nodes, (node, i) => node.subscribe(room, perRoom[i]!.deliver))
      }
      const acked = yield* Effect.forEach(
        nodes.flatMap((node, n) => rooms.map((room) => ({ node, n, room }))),
        ({ n, node, room }) =>
          Effect.forEach(range(1, perNode), (i) => node.publish(room, line(`node${n} line${i}`)), {
            concurrency: 4
          }),
        { concurrency: "unbounded" }
      )
      const total = perNode * nodes.length
      for (const room of rooms) {
        const perRoom = recorders.get(room)!
        yield* Fixtures.eventually(() => perRoom.every((r) => r.seen.length >= total))
        const reference = perRoom[0]!.seen.map((s) => s.entry.payload)
        for (const r of perRoom) {
          assert.deepStrictEqual(offsets(r.seen), range(1, total))
          assert.deepStrictEqual(r.seen.map((s) => s.entry.payload), reference)
          for (const { entry } of r.seen) assert.strictEqual(JSON.parse(entry.payload).offset, entry.offset)
        }
      }
      const ackedOffsets = acked.flat().map((position) => position.offset).sort((a, b) => a - b)
      assert.strictEqual(ackedOffsets.length, total * rooms.length)
      assert.strictEqual(new Set(acked.flat().map((p) => p.epoch)).size, rooms.length)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("publishes waiting for their room go out together (maxBatch each, one pub/sub message each), in order; a repeated key in a batch gets its first offset", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const history = yield* historyNode({ prefix, maxBatch: 8 })
      const seen = recorder()
      yield* history.subscribe("r", seen.deliver)
      const before = calls(yield* Metric.value(commands))
      // 40 publishes started at once: the first goes alone, the rest in batches of at most 8.
      const keysOf = (i: number) => (i === 30 ? "k29" : `k${i}`)
      const acked = yield* Effect.forEach(
        range(1, 40),
        (i) => history.publish("r", line(`l${i} é✓🎉:7:`), { key: keysOf(i) }),
        { concurrency: "unbounded" }
      )
      const expected = range(1, 40).map((i) => (i < 30 ? i : i - 1))
      assert.deepStrictEqual(acked.map((p) => p.offset), expected, "offsets in start order; the repeat gets its first's")
      yield* Fixtures.eventually(() => seen.seen.length >= 39)
      assert.deepStrictEqual(offsets(seen.seen), range(1, 39))
      assert.deepStrictEqual(
        seen.seen.map((s) => JSON.parse(s.entry.payload).text),
        range(1, 40).filter((i) => i !== 30).map((i) => `l${i} é✓🎉:7:`),
        "multi-byte text and colons survive the batch message"
      )
      // The 40 lines took a handful of calls (first alone, then batches of 8), not 40.
      assert.isAtMost(calls(yield* Metric.value(commands)) - before, 8)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("recover after a position: the exact suffix; EpochChanged; a position ahead of the room", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const history = yield* historyNode({ prefix })
      const start = yield* history.position("r")
      assert.strictEqual(start.offset, 0)
      for (const i of range(1, 10)) yield* history.publish("r", line(`l${i}`))
      const position = yield* history.position("r")
      assert.deepStrictEqual(position, { epoch: start.epoch, offset: 10 })
      const recovered = yield* history.recover("r", { epoch: start.epoch, offset: 4 })
      assert(recovered._tag === "Recovered")
      assert.deepStrictEqual(recovered.entries.map((e) => e.offset), range(5, 10))
      assert.deepStrictEqual(recovered.entries.map((e) => JSON.parse(e.payload).text), range(5, 10).map((i) => `l${i}`))
      const upToDate = yield* history.recover("r", position)
      assert(upToDate._tag === "Recovered")
      assert.strictEqual(upToDate.entries.length, 0)
      const other = yield* history.recover("r", { epoch: "not-this-one", offset: 3 })
      assert.deepStrictEqual(other, { _tag: "Unrecoverable", reason: "EpochChanged", position })
      const ahead = yield* history.recover("r", { epoch: start.epoch, offset: 11 })
      assert.strictEqual(ahead._tag === "Unrecoverable" && ahead.reason, "EpochChanged")
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("TooOld past maxEntries, maxBytes and maxAge; the trimmed stream keeps the newest", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const byCount = yield* historyNode({ prefix, limits: { maxEntries: 5 } })
      for (const i of range(1, 10)) yield* byCount.publish("count", () => `line ${i}`)
      const { epoch } = yield* byCount.position("count")
      const tooOld = yield* byCount.recover("count", { epoch, offset: 4 })
      assert.strictEqual(tooOld._tag === "Unrecoverable" && tooOld.reason, "TooOld")
      const justKept = yield* byCount.recover("count", { epoch, offset: 5 })
      assert(justKept._tag === "Recovered")
      assert.deepStrictEqual(justKept.entries.map((e) => e.payload), range(6, 10).map((i) => `line ${i}`))

      const byBytes = yield* historyNode({ prefix, limits: { maxBytes: 50 } })
      for (const i of range(1, 10)) yield* byBytes.publish("bytes", () => "x".repeat(19) + (i % 10))
      const bytesEpoch = (yield* byBytes.position("bytes")).epoch
      const kept = yield* byBytes.recover("bytes", { epoch: bytesEpoch, offset: 8 })
      assert(kept._tag === "Recovered")
      assert.deepStrictEqual(kept.entries.map((e) => e.offset), [9, 10])
      const trimmed = yield* byBytes.recover("bytes", { epoch: bytesEpoch, offset: 7 })
      assert.strictEqual(trimmed._tag === "Unrecoverable" && trimmed.reason, "TooOld")

      const byAge = yield* historyNode({ prefix, limits: { maxAgeMs: 200 } })
      for (const i of range(1, 3)) yield* byAge.publish("age", () => `line ${i}`)
      const ageStart = yield* byAge.position("age")
      const fresh = yield* byAge.recover("age", { epoch: ageStart.epoch, offset: 0 })
      assert.strictEqual(fresh._tag, "Recovered")
      yield* Effect.sleep("300 millis")
      const aged = yield* byAge.recover("age", { epoch: ageStart.epoch, offset: 0 })
      assert.deepStrictEqual(aged, { _tag: "Unrecoverable", reason: "TooOld", position: ageStart })
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("render runs with the assigned values; a render that does not write them verbatim is a defect; a checked one runs once", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const history = yield* historyNode({ prefix })
      const first = yield* history.publish("r", (p, at) => `${p.epoch}/${p.offset}/${at}/${p.offset}`)
      const second = yield* history.publish("r", () => "no position")
      assert.strictEqual(second.offset, 2)
      const all = yield* history.recover("r", { epoch: first.epoch, offset: 0 })
      assert(all._tag === "Recovered")
      const [epoch, offset, at, again] = all.entries[0]!.payload.split("/")
      assert.deepStrictEqual([epoch, offset, again], [first.epoch, "1", "1"])
      assert.strictEqual(Number(at), all.entries[0]!.at)
      assert.strictEqual(all.entries[1]!.payload, "no position")
      const exit = yield* Effect.exit(history.publish("r", (p) => `next is ${p.offset + 1}`))
      assert(Exit.isFailure(exit) && !Exit.isInterrupted(exit))
      assert.strictEqual((yield* history.position("r")).offset, 2)
      // `checked`: the caller vouches, so render runs once (not twice) and its values are put in by Redis.
      let renders = 0
      const third = yield* history.publish("r", (p, at) => `${++renders} ${p.epoch}/${p.offset}/${at}`, { checked: true })
      assert.strictEqual(renders, 1)
      const last = yield* history.recover("r", { epoch: first.epoch, offset: 2 })
      assert(last._tag === "Recovered")
      assert.strictEqual(last.entries[0]!.payload, `1 ${third.epoch}/3/${last.entries[0]!.at}`)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("subscribe delivers from now on; one channel per room per node; the last scope to close unsubscribes", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.make(Fixtures.options())
      const channel = RedisHistory.keys(prefix, "r").channel
      const subscribers = Effect.map(redis.command(["PUBSUB", "NUMSUB", channel]), (reply) => (reply as Array<number>)[1])
      const b = yield* historyNode({ prefix })
      yield* b.publish("r", line("before"))
      assert.strictEqual(yield* subscribers, 0)
      const one = recorder()
      const two = recorder()
      const a = yield* historyNode({ prefix })
      yield* Effect.gen(function*() {
        yield* a.subscribe("r", one.deliver)
        yield* Effect.scoped(Effect.gen(function*() {
          yield* a.subscribe("r", two.deliver)
          assert.strictEqual(yield* subscribers, 1)
          yield* b.publish("r", line("both"))
          yield* Fixtures.eventually(() => two.seen.length === 1)
        }))
        yield* b.publish("r", line("only one"))
        yield* Fixtures.eventually(() => one.seen.length === 2)
        assert.strictEqual(yield* subscribers, 1)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(offsets(one.seen), [2, 3])
      assert.deepStrictEqual(offsets(two.seen), [2])
      // The node is up but its last subscriber is gone: it left the channel.
      const left = yield* subscribers.pipe(
        Effect.filterOrFail((count) => count === 0),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("2 seconds"))),
        Effect.either
      )
      assert(Either.isRight(left))
      yield* b.publish("r", line("nobody here"))
      yield* Effect.sleep("100 millis")
      assert.strictEqual(one.seen.length, 2)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })
})
