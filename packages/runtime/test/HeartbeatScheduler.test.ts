import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as HeartbeatScheduler from "@tether/runtime/HeartbeatScheduler"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

// Every case runs against a platform socket and against a socket carrying a
// Tether transport (the path NodeTether.layerServer's connections take).
const suite = (_kind: MemorySocket.Kind) => {
describe("HeartbeatScheduler", () => {
  it.scoped("runs each beat at its due time, in order, and not after it is cancelled", () =>
    Effect.gen(function*() {
      const scheduler = yield* HeartbeatScheduler.make
      const runs: Array<string> = []
      scheduler.add({ run: (now) => (runs.push(`a@${now}`), now < 3000 ? now + 1000 : undefined) }, 1000)
      const cancelB = scheduler.add({ run: (now) => (runs.push(`b@${now}`), now + 700) }, 700)
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(runs, ["b@700"])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(runs, ["b@700", "a@1000"])
      cancelB()
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(runs, ["b@700", "a@1000", "a@2000", "a@3000"])
      assert.strictEqual(scheduler.size(), 0)
      // A beat added while the fiber sleeps for a later one wakes it in time.
      scheduler.add({ run: (now) => (runs.push(`c@${now}`), undefined) }, 6500)
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(runs.at(-1), "c@6500")
    }))

  it.scoped("connections on a shared scheduler are kicked at the timeout, not before", () =>
    Effect.gen(function*() {
      const heartbeatScheduler = yield* HeartbeatScheduler.make
      const started = yield* Effect.forEach([0, 1, 2], (i) =>
        Effect.gen(function*() {
          if (i > 0) yield* TestClock.adjust("1 second")
          const memory = MemorySocket.make()
          const connection = yield* Connection.make(memory.socket, {
            framing,
            codec,
            dialect: TetherProtocol.dialect,
            heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
            heartbeatScheduler
          })
          const fiber = yield* Effect.fork(connection.run(() => undefined))
          for (let n = 0; n < 100 && !memory.opened(); n++) yield* Effect.yieldNow()
          return { fiber, memory }
        }))
      // Started at 0, 1 and 2 s: the first is due at 17 s.
      yield* TestClock.adjust("14999 millis")
      assert.isTrue(started.every(({ fiber }) => fiber.unsafePoll() === null))
      yield* TestClock.adjust("1 millis")
      const first = yield* Fiber.join(started[0]!.fiber).pipe(Effect.flip)
      assert.strictEqual(first._tag, "HeartbeatTimeout")
      assert.isNull(started[1]!.fiber.unsafePoll())
      yield* TestClock.adjust("2 seconds")
      for (const { fiber, memory } of started.slice(1)) {
        assert.strictEqual((yield* Fiber.join(fiber).pipe(Effect.flip))._tag, "HeartbeatTimeout")
        assert.isTrue(memory.destroyed())
      }
      // Each got its pings at 5, 10 and 15 s after its own start.
      assert.strictEqual(started[0]!.memory.written.length, 3)
      assert.strictEqual(heartbeatScheduler.size(), 0)
    }))
})
}

for (const kind of ["socket", "transport"] as const) {
  describe(`over a ${kind}`, () => {
    beforeAll(() => MemorySocket.useKind(kind))
    suite(kind)
  })
}
