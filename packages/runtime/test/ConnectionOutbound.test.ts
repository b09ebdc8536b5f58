import { assert, beforeAll, describe, it } from "@effect/vitest"
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
import { codec, frame, framing, start, writtenMessages } from "./fixtures/connection.js"

// Every case runs against a platform socket and against a socket carrying a
// Tether transport (the path NodeTether.layerServer's connections take).
const suite = () => {
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

  it.effect("a burst (a resume's replay) goes over the bounds; a peer that does not read still meets the raised bounds; once drained, the usual ones", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec, outbound: { capacity: 1000, maxBytes: 64 * 1024 } })
      memory.fillWrites()
      const text = "x".repeat(16 * 1024)
      const burst = Array.from({ length: 10 }, (_, i): Message.Message => ({ _tag: "Say", id: i, text }))
      assert.isTrue(connection.unsafeSendBurst(burst), "160 KiB past a 64 KiB bound, at once")
      yield* Effect.yieldNow()
      assert.isNull(fiber.unsafePoll(), "not a slow consumer")
      memory.drain()
      yield* connection.flushed
      assert.deepStrictEqual(writtenMessages(memory).map((m) => (m as Message.Say).id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      // Drained: the usual 64 KiB bound again.
      memory.stallWrites()
      let accepted = 0
      for (let i = 0; i < 10; i++) if (connection.unsafeSend({ _tag: "Say", id: 100 + i, text })) accepted++
      assert.isAtMost(accepted, 6)
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SlowConsumer")
    }))

  it.effect("a burst to a peer that does not read: the raised bound holds the next messages to the burst's size", () =>
    Effect.gen(function*() {
      const { connection, fiber, memory } = yield* start({ framing, codec, outbound: { capacity: 1000, maxBytes: 64 * 1024 } })
      memory.stallWrites()
      const text = "x".repeat(16 * 1024)
      assert.isTrue(connection.unsafeSendBurst(Array.from({ length: 10 }, (_, i): Message.Message => ({ _tag: "Say", id: i, text }))))
      let accepted = 0
      for (let i = 0; i < 10; i++) if (connection.unsafeSend({ _tag: "Say", id: 100 + i, text })) accepted++
      assert.isAtMost(accepted, 6, "after the burst, about the usual bound's worth more")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SlowConsumer")
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
