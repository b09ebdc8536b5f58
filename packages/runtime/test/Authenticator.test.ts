import { assert, describe, it } from "@effect/vitest"
import * as Authenticator from "@tether/runtime/Authenticator"
import * as Metrics from "@tether/runtime/Metrics"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as TestClock from "effect/TestClock"

// As a users file would give them: "__proto__" an own key.
const users = Authenticator.Authenticator.layerUsers(JSON.parse(`{"alice":"right","__proto__":"proto","constructor":"c"}`))
const check = (layer: Layer.Layer<Authenticator.Authenticator>, attempt: Authenticator.Attempt) =>
  Effect.flatMap(Authenticator.Authenticator, (a) => a.authenticate(attempt)).pipe(Effect.provide(layer))

const wrong = (remote = "10.0.0.1:5000", user = "alice"): Authenticator.Attempt => ({ user, password: "wrong", remote })

/** Logs captured as text, for assertions. */
const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, message }) => {
    lines.push(`${String(message)} ${JSON.stringify(Object.fromEntries(annotations))}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("Authenticator", () => {
  it.effect("Server.Authenticator is the same service (re-exported)", () =>
    Effect.sync(() => assert.strictEqual(Server.Authenticator, Authenticator.Authenticator)))

  it.effect("layerUsers: right password, wrong password, no password, and names like __proto__ and constructor", () =>
    Effect.gen(function*() {
      assert.isTrue(yield* check(users, { user: "alice", password: "right", remote: "r:1" }))
      assert.isFalse(yield* check(users, { user: "alice", password: "wrong", remote: "r:1" }))
      assert.isFalse(yield* check(users, { user: "alice", token: "right", remote: "r:1" }))
      assert.isTrue(yield* check(users, { user: "__proto__", password: "proto", remote: "r:1" }))
      assert.isTrue(yield* check(users, { user: "constructor", password: "c", remote: "r:1" }))
      assert.isFalse(yield* check(users, { user: "toString", password: "[object Object]", remote: "r:1" }))
    }))

  it("hostOf keeps the host of IPv4 and IPv6 addresses", () => {
    assert.strictEqual(Authenticator.hostOf("10.0.0.1:5000"), "10.0.0.1")
    assert.strictEqual(Authenticator.hostOf("::ffff:127.0.0.1:41234"), "::ffff:127.0.0.1")
    assert.strictEqual(Authenticator.hostOf("unknown"), "unknown")
  })
})

describe("Authenticator.throttled", () => {
  const throttledUsers = (options: Authenticator.ThrottleOptions = {}) =>
    Layer.effect(Authenticator.Authenticator, Authenticator.throttled(options)).pipe(Layer.provide(users))

  it.effect("each failure doubles the wait of the next attempt from that address, up to the cap", () =>
    Effect.gen(function*() {
      const auth = yield* Authenticator.Authenticator
      assert.isFalse(yield* auth.authenticate(wrong())) // first: at once
      // the second waits 250 ms
      const second = yield* Effect.fork(auth.authenticate(wrong()))
      yield* TestClock.adjust("249 millis")
      assert.isNull(second.unsafePoll())
      yield* TestClock.adjust("1 millis")
      assert.isFalse(yield* Fiber.join(second))
      // the third 500 ms, then 1 s, 2 s, and never more than the 2 s cap
      for (const waitMs of [500, 1000, 2000, 2000]) {
        const next = yield* Effect.fork(auth.authenticate(wrong()))
        yield* TestClock.adjust(waitMs - 1)
        assert.isNull(next.unsafePoll(), `still waiting before ${waitMs} ms`)
        yield* TestClock.adjust(1)
        assert.isFalse(yield* Fiber.join(next))
      }
    }).pipe(Effect.provide(throttledUsers({ maxDelay: "2 seconds" }))))

  it.effect("the user is throttled whatever the address; a success forgets the user's failures", () =>
    Effect.gen(function*() {
      const auth = yield* Authenticator.Authenticator
      assert.isFalse(yield* auth.authenticate(wrong("10.0.0.1:1")))
      // another address, same user: waits
      const other = yield* Effect.fork(auth.authenticate({ user: "alice", password: "right", remote: "10.0.0.2:1" }))
      yield* TestClock.adjust("100 millis")
      assert.isNull(other.unsafePoll())
      yield* TestClock.adjust("150 millis")
      assert.isTrue(yield* Fiber.join(other))
      // the user's failures are forgotten: another address logs in at once
      const again = yield* Effect.fork(auth.authenticate({ user: "alice", password: "right", remote: "10.0.0.3:1" }))
      yield* Effect.yieldNow()
      assert.isTrue(yield* Fiber.join(again))
      // another user from another address is not slowed by alice's failures
      const fresh = yield* Effect.fork(auth.authenticate({ user: "__proto__", password: "proto", remote: "10.0.0.4:1" }))
      yield* Effect.yieldNow()
      assert.isTrue(yield* Fiber.join(fresh))
    }).pipe(Effect.provide(throttledUsers())))

  it.effect("parallel guesses are serialized; one that would wait past maxWait is refused unchecked and counted", () =>
    Effect.gen(function*() {
      const auth = yield* Authenticator.Authenticator
      const throttledBefore = (yield* Metric.value(Metrics.loginsThrottled)).count
      assert.isFalse(yield* auth.authenticate(wrong()))
      // Each waits for its own turn, 250 ms apart (the delay after one failure): 250, 500, 750, 1000 ms.
      // The fifth would wait 1,250 ms, past maxWait: refused at once, unchecked.
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(auth.authenticate(wrong())))
      yield* Effect.yieldNow()
      assert.isFalse(yield* Fiber.join(fibers[4]!))
      assert.strictEqual((yield* Metric.value(Metrics.loginsThrottled)).count - throttledBefore, 1)
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("249 millis")
        assert.isNull(fibers[i]!.unsafePoll(), `attempt ${i + 1} waits its turn`)
        yield* TestClock.adjust("1 millis")
        assert.isFalse(yield* Fiber.join(fibers[i]!))
      }
    }).pipe(Effect.provide(throttledUsers({ maxWait: "1 second" }))))

  it.effect("failures are forgotten after forgetAfter, and the tracking state is capped", () =>
    Effect.gen(function*() {
      const state = new Authenticator.Throttle({ forgetAfter: "1 minute", maxTracked: 100 })
      const auth = Authenticator.throttle({ authenticate: () => Effect.succeed(false) }, state)
      assert.isFalse(yield* auth.authenticate(wrong()))
      yield* TestClock.adjust("61 seconds")
      const after = yield* Effect.fork(auth.authenticate(wrong()))
      yield* Effect.yieldNow()
      assert.isNotNull(after.unsafePoll(), "no wait once forgotten")
      // 1,000 addresses and users: the state never holds more than 100 keys
      for (let i = 0; i < 1000; i++) {
        state.failed([`a:10.1.${i >> 8}.${i & 255}`, `u:user${i}`], 0)
        assert.isAtMost(state.size, 100)
      }
    }))

  it.effect("a failure is logged with the target user, escaped and bounded", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const auth = Authenticator.throttle(
        { authenticate: () => Effect.succeed(false) },
        new Authenticator.Throttle()
      )
      yield* auth.authenticate({ user: "mallory\u001b[2J" + "x".repeat(5000), password: "p", remote: "10.9.9.9:1" })
      const line = logs.lines.find((l) => l.startsWith("login failed"))
      assert.isDefined(line)
      assert.include(line!, "mallory\\\\x1b[2J")
      assert.include(line!, "10.9.9.9:1")
      assert.isBelow(line!.length, 400)
    }).pipe(Effect.provide(logs.layer))
  })
})
