import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Metrics from "@tether/runtime/Metrics"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

// Every case runs against a platform socket and against a socket carrying a
// Tether transport (the path NodeTether.layerServer's connections take).
const suite = (_kind: MemorySocket.Kind) => {
describe("Metrics", () => {
  it.effect("count frames and bytes both ways, active connections and heartbeat timeouts", () =>
    Effect.gen(function*() {
      const before = {
        framesIn: (yield* Metric.value(Metrics.framesIn)).count,
        framesOut: (yield* Metric.value(Metrics.framesOut)).count,
        bytesIn: (yield* Metric.value(Metrics.bytesIn)).count,
        timeouts: (yield* Metric.value(Metrics.heartbeatTimeouts)).count,
        active: (yield* Metric.value(Metrics.connectionsActive)).value
      }
      const memory = MemorySocket.make()
      const connection = yield* Connection.make(memory.socket, {
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.idle({ timeout: "3 seconds" })
      })
      const fiber = yield* Effect.fork(connection.run(() => undefined))
      for (let i = 0; i < 100 && !memory.opened(); i++) yield* Effect.yieldNow()
      assert.strictEqual((yield* Metric.value(Metrics.connectionsActive)).value, before.active + 1)
      const frame = framing.encodeAll([codec.encode({ _tag: "Who" }) as Uint8Array, codec.encode({ _tag: "Who" }) as Uint8Array]) as Uint8Array
      memory.push(frame)
      connection.unsafeSend({ _tag: "Ping", seq: 1 })
      yield* connection.flushed
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual((yield* Fiber.join(fiber).pipe(Effect.flip))._tag, "HeartbeatTimeout")
      assert.strictEqual((yield* Metric.value(Metrics.framesIn)).count - before.framesIn, 2)
      assert.strictEqual((yield* Metric.value(Metrics.bytesIn)).count - before.bytesIn, frame.length)
      assert.strictEqual((yield* Metric.value(Metrics.framesOut)).count - before.framesOut, 1)
      assert.strictEqual((yield* Metric.value(Metrics.heartbeatTimeouts)).count - before.timeouts, 1)
      assert.strictEqual((yield* Metric.value(Metrics.connectionsActive)).value, before.active)
    }))
})
}

for (const kind of ["socket", "transport"] as const) {
  describe(`over a ${kind}`, () => {
    beforeAll(() => MemorySocket.useKind(kind))
    suite(kind)
  })
}
