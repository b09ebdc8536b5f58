import { assert, describe, it } from "@effect/vitest"
import * as Dashboard from "@tether/node/Dashboard"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as TestClock from "effect/TestClock"
import { RoomSeries } from "../src/internal/roomSeries.js"

// Metrics of this file only: the registry is global to the process.
const active = Metric.gauge("dashboard_test_active")
const frames = Metric.counter("dashboard_test_frames_total", { incremental: true })
const kicks = Metric.counter("dashboard_test_kicks_total", { incremental: true })
const series: ReadonlyArray<Dashboard.Series> = [
  { key: "active", metric: "dashboard_test_active", kind: "gauge" },
  { key: "frames", metric: "dashboard_test_frames_total", kind: "rate" },
  { key: "kicks", metric: "dashboard_test_kicks_total", kind: "increase" }
]
const reason = (value: string) => [MetricLabel.make("reason", value)]

describe("RoomSeries", () => {
  it("keeps at most `maxTracked` rooms (the one longest out of the busiest goes) and drops one out for a whole window", () => {
    const series = new RoomSeries(3, 2)
    series.record(0, [{ room: "a", messagesPerSecond: 1 }])
    series.record(1, [{ room: "b", messagesPerSecond: 2 }])
    series.record(2, [{ room: "c", messagesPerSecond: 3 }])
    assert.strictEqual(series.size, 2)
    assert.isUndefined(series.column("a"))
    assert.deepStrictEqual(series.column("b"), [null, 2, null])
    assert.deepStrictEqual(series.column("c"), [null, null, 3])
    series.record(0, [{ room: "c", messagesPerSecond: 4 }])
    series.record(1, [{ room: "c", messagesPerSecond: 5 }])
    assert.isUndefined(series.column("b"), "out of the busiest for 3 samples")
    assert.deepStrictEqual(series.column("c"), [4, 5, 3])
  })
})

describe("Dashboard.makeSampler", () => {
  it.scoped("samples gauges as values, counters as per-second rates and per-interval increases (labels summed)", () =>
    Effect.gen(function*() {
      const sampler = yield* Dashboard.makeSampler({ interval: "2 seconds", capacity: 10, series })
      assert.deepStrictEqual(sampler.samples().at, [])
      active.unsafeModify(3, [])
      frames.unsafeUpdate(10, [])
      kicks.unsafeUpdate(1, reason("idle"))
      kicks.unsafeUpdate(2, reason("spam"))
      yield* TestClock.adjust("2 seconds")
      active.unsafeModify(-1, [])
      frames.unsafeUpdate(4, [])
      yield* TestClock.adjust("2 seconds")
      const samples = sampler.samples()
      assert.deepStrictEqual(samples.at, [2000, 4000])
      assert.deepStrictEqual(samples.values, { active: [3, 2], frames: [5, 2], kicks: [3, 0] })
      assert.strictEqual(samples.intervalMs, 2000)
      assert.strictEqual(samples.capacity, 10)
      assert.deepStrictEqual([samples.rooms, samples.roomCount, samples.nodes], [[], 0, []])
    }))

  it.scoped("keeps at most `capacity` samples, the newest, oldest first", () =>
    Effect.gen(function*() {
      const sampler = yield* Dashboard.makeSampler({ interval: "1 second", capacity: 3, series })
      for (let i = 1; i <= 5; i++) {
        frames.unsafeUpdate(i, [])
        yield* TestClock.adjust("1 second")
      }
      const samples = sampler.samples()
      assert.deepStrictEqual(samples.at, [3000, 4000, 5000])
      assert.deepStrictEqual(samples.values.frames, [3, 4, 5])
    }))

  it.scoped("per-room rows: lines per second over the interval, `roomLimit` passed to the source and capped; nodes read each sample", () =>
    Effect.gen(function*() {
      const limits: Array<number> = []
      let lines = { busy: 0, quiet: 0 }
      const rooms: Dashboard.RoomSource = (limit) => {
        limits.push(limit)
        const busiest = [
          { room: "#busy", members: 2, lines: lines.busy },
          { room: "#quiet", members: 1, lines: lines.quiet }
        ].slice(0, limit)
        lines = { busy: 0, quiet: 0 }
        return { rooms: 5, busiest }
      }
      let nodesFail = false
      const row: Dashboard.NodeRow = { node: "n1", connections: 3, messagesInPerSecond: 1, messagesOutPerSecond: 2, lastSeenAgoMs: 5 }
      const nodes = Effect.suspend(() => (nodesFail ? Effect.fail("down") : Effect.succeed([row])))
      const sampler = yield* Dashboard.makeSampler({ interval: "2 seconds", capacity: 4, series, rooms, roomLimit: 1000, nodes })
      lines = { busy: 10, quiet: 1 }
      yield* TestClock.adjust("2 seconds")
      let samples = sampler.samples()
      assert.deepStrictEqual(samples.rooms, [
        { room: "#busy", members: 2, messagesPerSecond: 5 },
        { room: "#quiet", members: 1, messagesPerSecond: 0.5 }
      ])
      assert.strictEqual(samples.roomCount, 5)
      assert.deepStrictEqual(samples.nodes, [row])
      assert.deepStrictEqual(limits, [100, 100], "one read at start (a window begins), one per sample; at most 100 rows")
      nodesFail = true
      yield* TestClock.adjust("2 seconds")
      samples = sampler.samples()
      assert.deepStrictEqual(samples.rooms.map((r) => r.messagesPerSecond), [0, 0])
      assert.deepStrictEqual(samples.nodes, [], "nodes that cannot be read are not shown stale")
      assert.deepStrictEqual(samples.roomSeries, { "#busy": [5, 0], "#quiet": [0.5, 0] }, "aligned with `at`")
    }))

  it.scoped("room series: the busiest rooms' rates over time, null where a room was not among them", () =>
    Effect.gen(function*() {
      let sample = 0 // the sampler's reads: one at start, then one per sample
      const rooms: Dashboard.RoomSource = () => {
        sample++
        return { rooms: 3, busiest: sample === 3 ? [{ room: "#b", members: 1, lines: 4 }] : [{ room: "#a", members: 1, lines: 2 }] }
      }
      const sampler = yield* Dashboard.makeSampler({ interval: "1 second", capacity: 3, series, rooms, roomLimit: 1 })
      for (let i = 0; i < 4; i++) yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(sampler.samples().roomSeries, { "#a": [null, 2, 2] })
    }))

  it.effect("stops sampling when its scope closes", () =>
    Effect.gen(function*() {
      const sampler = yield* Effect.scoped(Dashboard.makeSampler({ interval: "1 second", capacity: 3, series }))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(sampler.samples().at, [])
    }))
})
