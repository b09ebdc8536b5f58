import * as ClassicProtocol from "@tether/runtime/ClassicProtocol"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Classic from "@tether/protocol/Classic"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Wire from "@tether/protocol/Wire"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

const frame = (message: Message.Message): Uint8Array => {
  const payload = codec.encode(message)
  if (!(payload instanceof Uint8Array)) throw payload
  const bytes = framing.encode(payload)
  if (!(bytes instanceof Uint8Array)) throw bytes
  return bytes
}

/** Decodes everything written to a memory socket back into messages. */
const writtenMessages = (socket: MemorySocket.MemorySocket): Array<Message.Message> => {
  const decoder = framing.decoder()
  const out: Array<Message.Message> = []
  for (const chunk of socket.written) {
    const frames = decoder.push(chunk)
    if (frames instanceof Frame.FrameError) throw frames
    for (const f of frames) {
      const m = codec.decode(f)
      if (m instanceof Codec.DecodeError) throw m
      out.push(m)
    }
  }
  return out
}

/** Lets the forked connection reach its reader (bounded: a few scheduler turns). */
const untilOpen = (memory: MemorySocket.MemorySocket) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && !memory.opened(); i++) yield* Effect.yieldNow()
    assert.isTrue(memory.opened(), "the connection opened its socket")
  })

const start = <M>(options: Connection.Options<M>, handler: (batch: ReadonlyArray<M>) => Effect.Effect<void> = () => Effect.void) =>
  Effect.gen(function*() {
    const memory = MemorySocket.make()
    const connection = yield* Connection.make(memory.socket, options)
    const fiber = yield* Effect.fork(connection.run(handler))
    yield* untilOpen(memory)
    return { memory, connection, fiber }
  })

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

describe("Connection outbound", () => {
  it.effect("writes everything queued in one turn as one socket write", () =>
    Effect.gen(function*() {
      const { connection, memory } = yield* start({ framing, codec })
      memory.stallWrites()
      connection.unsafeSend({ _tag: "Who" })
      yield* Effect.yieldNow()
      const memory2 = MemorySocket.make()
      const c2 = yield* Connection.make(memory2.socket, { framing, codec })
      for (let i = 0; i < 10; i++) c2.unsafeSend({ _tag: "Ping", seq: i })
      yield* Effect.fork(c2.run(() => Effect.void))
      yield* Effect.yieldNow()
      yield* c2.flushed
      assert.strictEqual(memory2.written.length, 1)
      assert.deepStrictEqual(writtenMessages(memory2).map((m) => (m as Message.Ping).seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }))

  it.effect("a text codec over lines reads text: a character split across chunks, CRLF, invalid UTF-8 a FrameError", () =>
    Effect.gen(function*() {
      const received: Array<Message.Message> = []
      const { fiber, memory } = yield* start({ framing: Frame.lines(), codec }, (batch) =>
        Effect.sync(() => {
          received.push(...batch)
        }))
      const bytes = new TextEncoder().encode(`{"_tag":"Say","id":1,"text":"\u00e9\u2713"}\r\n{"_tag":"Who"}\n`)
      const cut = bytes.indexOf(0xe2) + 1 // inside the three bytes of the check mark
      memory.push(bytes.subarray(0, cut))
      memory.push(bytes.subarray(cut))
      for (let i = 0; i < 20 && received.length < 2; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(received, [{ _tag: "Say", id: 1, text: "\u00e9\u2713" }, { _tag: "Who" }])
      memory.push(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]))
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.deepInclude(error as Frame.FrameError, { _tag: "FrameError", reason: "InvalidUtf8" })
    }))

  it.effect("a text codec over lines: a batch of text and broadcast bytes goes out in order, as UTF-8", () =>
    Effect.gen(function*() {
      const lines = Frame.lines()
      const memory = MemorySocket.make()
      const connection = yield* Connection.make(memory.socket, { framing: lines, codec })
      const say: Message.Message = { _tag: "Say", id: 3, text: "h\u00e9llo \u2713 \ud83d\ude00" }
      // first turn: text only; second: text with a broadcast's bytes among it
      connection.unsafeSend({ _tag: "Ping", seq: 1 })
      assert.isTrue(connection.unsafeSend(new Wire.Encoded(codec.encodeText!(say) as string)))
      yield* Effect.fork(connection.run(() => Effect.void))
      yield* connection.flushed
      connection.unsafeSend({ _tag: "Ping", seq: 4 })
      connection.unsafeSend(new Wire.Encoded(codec.encode({ _tag: "Ping", seq: 5 }) as Uint8Array))
      connection.unsafeSend(say)
      yield* connection.flushed
      assert.strictEqual(memory.written.length, 2, "one write per turn")
      const text = memory.written.map((chunk) => new TextDecoder("utf-8", { fatal: true }).decode(chunk))
      assert.deepStrictEqual(text, [
        `{"_tag":"Ping","seq":1}\n${JSON.stringify(say)}\n`,
        `{"_tag":"Ping","seq":4}\n{"_tag":"Ping","seq":5}\n${JSON.stringify(say)}\n`
      ])
    }))

  it.effect("a full socket: the writer waits for drain, then writes the rest in order, once", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec })
      memory.fillWrites()
      connection.unsafeSend({ _tag: "Ping", seq: 1 })
      for (let i = 0; i < 20 && memory.written.length === 0; i++) yield* Effect.yieldNow()
      assert.strictEqual(memory.written.length, 1, "the first write is taken")
      connection.unsafeSend({ _tag: "Ping", seq: 2 })
      connection.unsafeSend({ _tag: "Ping", seq: 3 })
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      assert.strictEqual(memory.written.length, 1, "nothing more is written while the socket is full")
      memory.drain()
      yield* connection.flushed
      assert.strictEqual(memory.written.length, 2, "what queued meanwhile goes out as one write")
      assert.deepStrictEqual(writtenMessages(memory).map((m) => (m as Message.Ping).seq), [1, 2, 3])
      assert.isNull(fiber.unsafePoll(), "the connection still runs")
    }))

  it.effect("disconnect policy: a full queue closes the slow consumer", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec, outbound: { capacity: 4, overflow: "disconnect" } })
      memory.stallWrites()
      let accepted = 0
      for (let i = 0; i < 10; i++) if (connection.unsafeSend({ _tag: "Ping", seq: i })) accepted++
      // One batch is in the stalled write, four more fit in the queue.
      assert.isAtMost(accepted, 5)
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SlowConsumer")
      assert.isTrue(memory.destroyed())
    }))

  it.effect("backpressure policy: send suspends until there is room", () =>
    Effect.gen(function*() {
      const memory = MemorySocket.make()
      const connection = yield* Connection.make(memory.socket, {
        framing,
        codec,
        outbound: { capacity: 2, overflow: "backpressure" }
      })
      // Not running yet: nothing drains the queue.
      yield* connection.send({ _tag: "Ping", seq: 1 })
      yield* connection.send({ _tag: "Ping", seq: 2 })
      const third = yield* Effect.fork(connection.send({ _tag: "Ping", seq: 3 }))
      yield* Effect.yieldNow()
      assert.isNull(third.unsafePoll(), "the third send waits")
      yield* Effect.fork(connection.run(() => Effect.void))
      yield* Fiber.join(third)
      yield* connection.flushed
      assert.deepStrictEqual(writtenMessages(memory).map((m) => (m as Message.Ping).seq), [1, 2, 3])
    }))

  it.effect("close flushes what is queued, then ends with Kicked and no hard close", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec })
      connection.unsafeSend({ _tag: "Bye", reason: "kicked" })
      connection.close("kicked")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "Kicked")
      assert.deepStrictEqual(writtenMessages(memory), [{ _tag: "Bye", reason: "kicked" }])
      assert.isFalse(memory.destroyed())
      assert.isTrue(memory.ended())
    }))

  it.effect("a peer that writes faster than it is served is cut off (bounded inbound)", () =>
    Effect.gen(function*() {
      const { fiber, memory } = yield* start({ framing, codec, maxInbound: 8 }, () => Effect.never)
      for (let i = 0; i < 20 && fiber.unsafePoll() === null; i++) memory.push(frame({ _tag: "Who" }))
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "ProtocolError")
    }))

  it.effect("a synchronous handler runs in the data callback, in order, mixed with effectful batches", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const { connection, fiber, memory } = yield* start({ framing, codec }, ((batch: ReadonlyArray<Message.Message>) => {
        for (const m of batch) seen.push((m as Message.Ping).seq)
        // Every third batch takes the slow path; the ones after it wait their turn.
        return batch.some((m) => (m as Message.Ping).seq % 3 === 0) ? Effect.sleep("1 second") : undefined
      }) as never)
      memory.push(frame({ _tag: "Ping", seq: 1 }))
      assert.deepStrictEqual(seen, [1], "handled synchronously, before any fiber ran")
      memory.push(frame({ _tag: "Ping", seq: 3 }))
      memory.push(frame({ _tag: "Ping", seq: 4 }))
      memory.push(frame({ _tag: "Ping", seq: 5 }))
      assert.deepStrictEqual(seen, [1, 3], "later batches wait behind the effectful one")
      yield* TestClock.adjust("1 second")
      yield* Effect.yieldNow()
      assert.deepStrictEqual(seen, [1, 3, 4, 5])
      assert.isTrue(connection.unsafeSend({ _tag: "Who" }), "queued without an Effect")
      yield* connection.flushed
      assert.deepStrictEqual(writtenMessages(memory), [{ _tag: "Who" }])
      assert.isNull(fiber.unsafePoll())
    }))

  it.effect("backpressure: a synchronous handler's replies past capacity hold its next batch until they drain", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      let connection!: Connection.Connection<Message.Message>
      const started = yield* start({ framing, codec, outbound: { capacity: 2, overflow: "backpressure" } }, ((batch: ReadonlyArray<Message.Message>) => {
        for (const m of batch) {
          seen.push((m as Message.Ping).seq)
          // Three replies per message: over the capacity of 2 at once.
          for (let i = 0; i < 3; i++) assert.isTrue(connection.unsafeSend({ _tag: "Who" }))
        }
      }) as never)
      connection = started.connection
      started.memory.fillWrites()
      for (const seq of [1, 2, 3]) {
        started.memory.push(frame({ _tag: "Ping", seq }))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      }
      // Batch 1's replies went into the (stalled) write; batch 2's fill the queue past its bound: batch 3 waits.
      assert.deepStrictEqual(seen, [1, 2], "the third batch waits while the queue is over its bound")
      assert.strictEqual(connection.queued(), 3)
      assert.isNull(started.fiber.unsafePoll(), "backpressure does not disconnect")
      started.memory.drain()
      for (let i = 0; i < 50 && seen.length < 3; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(seen, [1, 2, 3])
      yield* connection.flushed
      assert.strictEqual(writtenMessages(started.memory).length, 9)
    }))

  it.effect("outbound is bounded in bytes too: a few large messages close a slow consumer", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec, outbound: { capacity: 1000, maxBytes: 64 * 1024 } })
      memory.stallWrites()
      const text = "x".repeat(16 * 1024)
      let accepted = 0
      for (let i = 0; i < 10; i++) if (connection.unsafeSend({ _tag: "Say", id: i, text })) accepted++
      assert.isAtMost(accepted, 6, "16 KiB messages: a 64 KiB bound takes about four, plus the batch in flight")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SlowConsumer")
      assert.match((error as { message: string }).message, /bytes/)
    }))

  it.effect("a quiet deadline (login): no pings before it is lifted; the heartbeat starts then", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
        deadline: { after: "30 seconds", what: "login", quiet: true }
      })
      yield* TestClock.adjust("12 seconds")
      assert.strictEqual(memory.written.length, 0, "no ping while the login is pending")
      memory.push(frame({ _tag: "Who" }))
      connection.clearDeadline()
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(memory.written.length, 0, "the first ping is one interval after the login")
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(writtenMessages(memory).map((m) => m._tag), ["Ping"])
      // The timeout counts from the login too: 17 s of silence after it.
      yield* TestClock.adjust("11999 millis")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "HeartbeatTimeout")
    }))
})
}

for (const kind of ["socket", "transport"] as const) {
  describe(`over a ${kind}`, () => {
    beforeAll(() => MemorySocket.useKind(kind))
    suite()
  })
}
