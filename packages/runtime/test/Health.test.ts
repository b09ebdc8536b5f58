import { assert, describe, it } from "@effect/vitest"
import * as Health from "@tether/runtime/Health"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

describe("Health", () => {
  it.effect("not ready until marked ready; draining from then on, whatever the checks say", () =>
    Effect.gen(function*() {
      const health = yield* Health.make()
      assert.deepStrictEqual(yield* health.report, { state: "not_ready", checks: [] })
      yield* health.markReady
      assert.strictEqual((yield* health.report).state, "ready")
      yield* health.markDraining
      assert.strictEqual((yield* health.report).state, "draining")
      // A late markReady does not undo a drain.
      yield* health.markReady
      assert.strictEqual((yield* health.report).state, "draining")
    }))

  it.scoped("a failing check makes it not ready, with the reason; closing its scope removes it", () =>
    Effect.gen(function*() {
      const health = yield* Health.make()
      yield* health.markReady
      let redisUp = true
      const scope = yield* Scope.make()
      yield* health.register("redis", Effect.suspend(() => redisUp ? Effect.void : Effect.fail("unreachable: ECONNREFUSED"))).pipe(
        Scope.extend(scope)
      )
      yield* health.register("disk", Effect.void)
      assert.deepStrictEqual(yield* health.report, {
        state: "ready",
        checks: [{ name: "redis", ok: true }, { name: "disk", ok: true }]
      })
      redisUp = false
      assert.deepStrictEqual(yield* health.report, {
        state: "not_ready",
        checks: [{ name: "redis", ok: false, detail: "unreachable: ECONNREFUSED" }, { name: "disk", ok: true }]
      })
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* health.report, { state: "ready", checks: [{ name: "disk", ok: true }] })
    }))

  it.scoped("a check that never answers counts as failed after the check timeout", () =>
    Effect.gen(function*() {
      const health = yield* Health.make({ checkTimeout: "1 second" })
      yield* health.markReady
      yield* health.register("hung", Effect.never)
      const fiber = yield* Effect.fork(health.report)
      yield* TestClock.adjust("999 millis")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 millis")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report, { state: "not_ready", checks: [{ name: "hung", ok: false, detail: "no answer within 1s" }] })
    }))

  it.scoped("a check that dies, or fails with a long reason, reports a bounded detail", () =>
    Effect.gen(function*() {
      const health = yield* Health.make()
      yield* health.markReady
      yield* health.register("dies", Effect.die(new Error("boom")))
      yield* health.register("chatty", Effect.fail("x".repeat(10_000)))
      const report = yield* health.report
      assert.strictEqual(report.state, "not_ready")
      assert.deepStrictEqual(report.checks[0], { name: "dies", ok: false, detail: "check died" })
      assert.strictEqual(report.checks[1]!.detail!.length, 200)
    }))
})
