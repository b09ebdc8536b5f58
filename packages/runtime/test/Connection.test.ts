import * as ClassicProtocol from "@tether/runtime/ClassicProtocol"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Classic from "@tether/protocol/Classic"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"
import { codec, frame, framing, start, writtenMessages } from "./fixtures/connection.js"

// Every case runs against a platform socket and against a socket carrying a
// Tether transport (the path NodeTether.layerServer's connections take).
const suite = () => {
describe("Connection heartbeat", () => {
  it.effect("kicks a silent peer at the timeout and not one interval before", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" })
      })
      yield* TestClock.adjust("16999 millis")
      assert.isNull(fiber.unsafePoll())
      // Pings went out at 5, 10 and 15 s.
      assert.deepStrictEqual(writtenMessages(memory).map((m) => m._tag), ["Ping", "Ping", "Ping"])
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
      if (error._tag === "HeartbeatTimeout") {
        assert.strictEqual(error.silentForMs, 17_000)
        assert.strictEqual(error.timeoutMs, 17_000)
      }
      assert.isTrue(memory.destroyed(), "a timed-out peer is hard-closed")
    }))

  it.effect("any inbound frame keeps a ping-policy connection alive", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" })
      })
      yield* TestClock.adjust("10 seconds")
      memory.push(frame({ _tag: "Pong", seq: 0 }))
      yield* TestClock.adjust("16 seconds")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 seconds")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
    }))

  it.effect("the idle policy is extended by any traffic and sends no pings", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const { fiber, memory } = yield* start(
        { framing, codec, dialect: TetherProtocol.dialect, heartbeat: Heartbeat.idle({ timeout: "3 seconds" }) },
        (batch) => Effect.sync(() => batch.forEach((m) => seen.push(m._tag)))
      )
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("2 seconds")
        memory.push(frame({ _tag: "Who" }))
        yield* Effect.yieldNow()
      }
      assert.isNull(fiber.unsafePoll(), "10 s of traffic every 2 s keeps a 3 s idle deadline alive")
      assert.strictEqual(seen.length, 5)
      assert.strictEqual(memory.written.length, 0, "idle sends no pings")
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
    }))

  it.effect("a partial frame is not a sign of life (slowloris)", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({ framing, codec, heartbeat: Heartbeat.idle({ timeout: "3 seconds" }) })
      yield* TestClock.adjust("2 seconds")
      memory.push(new Uint8Array([0, 0]))
      yield* TestClock.adjust("1 seconds")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
    }))

  it.effect("the classic policy ignores non-heartbeat traffic", () =>
    Effect.gen(function*() {
      const classicFraming = Frame.classic()
      const memory = MemorySocket.make()
      const connection = yield* Connection.make(memory.socket, {
        framing: classicFraming,
        codec: Classic.codec,
        dialect: ClassicProtocol.dialect(() => 0),
        heartbeat: ClassicProtocol.serverHeartbeat()
      })
      const handled: Array<string> = []
      const fiber = yield* Effect.fork(
        connection.run((batch) => Effect.sync(() => batch.forEach((p) => handled.push(p.messages[0]._tag))))
      )
      yield* Effect.yieldNow()
      const demo = Classic.encodePacket(Classic.packet(0, { _tag: "ClientDemo" }))
      const beat = Classic.encodePacket(Classic.packet(0, { _tag: "HeartBeat" }))
      if (!(demo instanceof Uint8Array) || !(beat instanceof Uint8Array)) throw new Error("encode")
      // ClientDemo every 2 s does not count...
      for (let i = 0; i < 8; i++) {
        yield* TestClock.adjust("2 seconds")
        memory.push(demo)
      }
      assert.isNull(fiber.unsafePoll(), "alive at 16 s")
      yield* TestClock.adjust("1 seconds")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
      assert.strictEqual(handled.length, 8)

      // ...while a HeartBeat does, and is not handed to the handler.
      const memory2 = MemorySocket.make()
      const connection2 = yield* Connection.make(memory2.socket, {
        framing: classicFraming,
        codec: Classic.codec,
        dialect: ClassicProtocol.dialect(() => 0),
        heartbeat: ClassicProtocol.serverHeartbeat()
      })
      const handled2: Array<unknown> = []
      const fiber2 = yield* Effect.fork(connection2.run((batch) => Effect.sync(() => handled2.push(...batch))))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("10 seconds")
      memory2.push(beat)
      yield* TestClock.adjust("16 seconds")
      assert.isNull(fiber2.unsafePoll(), "a HeartBeat at 10 s moves the deadline to 27 s")
      assert.strictEqual(handled2.length, 0)
      // The pinging side sent HeartBeats every 5 s and did not answer the peer's.
      const packets = memory2.written.map((b) => Classic.decodePacket(b))
      assert.strictEqual(packets.length, 5)
      yield* TestClock.adjust("1 seconds")
      assert.strictEqual((yield* Fiber.join(fiber2).pipe(Effect.flip))._tag, "HeartbeatTimeout")
    }))

  it.effect("the answering side replies to pings and detects a silent server", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.answer({ timeout: "17 seconds" })
      })
      memory.push(frame({ _tag: "Ping", seq: 7 }))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(writtenMessages(memory), [{ _tag: "Pong", seq: 7 }])
      yield* TestClock.adjust("17 seconds")
      assert.strictEqual((yield* Fiber.join(fiber).pipe(Effect.flip))._tag, "HeartbeatTimeout")
    }))

  it.effect("adaptive: 1 s at first, relaxes toward 5 s when stable, 0.5 s after a miss", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.adaptive({ stableAfter: "3 seconds", timeout: "60 seconds" })
      })
      const pingTimes: Array<number> = []
      let answered = 0
      // Answer every ping at once for 30 s, recording when pings arrive.
      for (let t = 0; t < 30_000; t += 100) {
        yield* TestClock.adjust("100 millis")
        const pings = writtenMessages(memory).filter((m) => m._tag === "Ping")
        while (answered < pings.length) {
          pingTimes.push(t + 100)
          memory.push(frame({ _tag: "Pong", seq: (pings[answered] as Message.Ping).seq }))
          answered++
        }
      }
      const gaps = pingTimes.slice(1).map((at, i) => at - pingTimes[i]!)
      assert.strictEqual(pingTimes[0], 1000, "first ping after 1 s")
      assert.strictEqual(gaps[0], 1000)
      assert.strictEqual(Math.max(...gaps), 5000, "relaxed to 5 s")
      assert.strictEqual(gaps.at(-1), 5000)
      // Now stop answering. The next ping goes unanswered; when the one after
      // it is due the miss is noticed, and pings then come every 0.5 s.
      const silentPings: Array<number> = []
      let seen = writtenMessages(memory).length
      for (let t = 30_000; t < 42_000; t += 100) {
        yield* TestClock.adjust("100 millis")
        const count = writtenMessages(memory).length
        for (; seen < count; seen++) silentPings.push(t + 100)
      }
      const silentGaps = silentPings.slice(1).map((at, i) => at - silentPings[i]!)
      assert.deepStrictEqual(silentGaps.slice(0, 4), [5000, 500, 500, 500])
      assert.isNull(fiber.unsafePoll())
    }))

  it.effect("a deadline (login timeout) fails with DeadlineExceeded unless cleared", () =>
    Effect.gen(function*() {
      const a = yield* start({ framing, codec, deadline: { after: "5 seconds", what: "login" } })
      const b = yield* start({ framing, codec, deadline: { after: "5 seconds", what: "login" } })
      b.connection.clearDeadline()
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(a.fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "DeadlineExceeded")
      assert.isNull(b.fiber.unsafePoll())
    }))
})

describe("Connection fail-fast", () => {
  it.effect("a writer failure stops the reader and the heartbeat at once", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" })
      })
      memory.failWrites()
      assert.isTrue(connection.unsafeSend({ _tag: "Who" }))
      // No clock adjustment: the failure must not wait for the heartbeat's next tick.
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SocketError")
      assert.isTrue(memory.destroyed(), "the socket is closed while the reader was still running")
      assert.isFalse(memory.opened(), "the reader has stopped")
    }))

  it.effect("garbage bytes fail with a typed FrameError or DecodeError", () =>
    Effect.gen(function*() {
      const a = yield* start({ framing, codec })
      a.memory.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]))
      const frameError = yield* Fiber.join(a.fiber).pipe(Effect.flip)
      assert.strictEqual(frameError._tag, "FrameError")
      assert.isTrue(a.memory.destroyed())

      const b = yield* start({ framing, codec })
      b.memory.push(framing.encode(new TextEncoder().encode("{\"_tag\":\"Nope\"}")) as Uint8Array)
      const decodeError = yield* Fiber.join(b.fiber).pipe(Effect.flip)
      assert.strictEqual(decodeError._tag, "DecodeError")
      if (decodeError._tag === "DecodeError") assert.strictEqual(decodeError.reason, "UnknownType")
    }))

  it.effect("peer FIN after whole frames is PeerClosed; inside a frame it is Truncated", () =>
    Effect.gen(function*() {
      const handled: Array<string> = []
      const a = yield* start({ framing, codec }, (batch) => Effect.sync(() => batch.forEach((m) => handled.push(m._tag))))
      a.memory.push(frame({ _tag: "Who" }))
      a.memory.end()
      const closed = yield* Fiber.join(a.fiber).pipe(Effect.flip)
      assert.strictEqual(closed._tag, "PeerClosed")
      assert.deepStrictEqual(handled, ["Who"], "what arrived before FIN is handled")

      const b = yield* start({ framing, codec })
      b.memory.push(new Uint8Array([0, 0, 0, 9, 1]))
      b.memory.end()
      const truncated = yield* Fiber.join(b.fiber).pipe(Effect.flip)
      assert.strictEqual(truncated._tag, "FrameError")
      if (truncated._tag === "FrameError") assert.strictEqual(truncated.reason, "Truncated")
    }))

  it.effect("a handler's failure ends the connection with that failure", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({ framing, codec }, () => Effect.fail("boom" as never))
      memory.push(frame({ _tag: "Who" }))
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error as unknown, "boom")
    }))
})
}

for (const kind of ["socket", "transport"] as const) {
  describe(`over a ${kind}`, () => {
    beforeAll(() => MemorySocket.useKind(kind))
    suite()
  })
}
