import { assert, describe, it } from "@effect/vitest"
import * as Dashboard from "@tether/node/Dashboard"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as TestClock from "effect/TestClock"

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
      assert.deepStrictEqual([samples.rooms, samples.nodes], [[], []])
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

  it.effect("stops sampling when its scope closes", () =>
    Effect.gen(function*() {
      const sampler = yield* Effect.scoped(Dashboard.makeSampler({ interval: "1 second", capacity: 3, series }))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(sampler.samples().at, [])
    }))
})
