import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as HeartbeatScheduler from "@tether/runtime/HeartbeatScheduler"
import * as Transport from "@tether/runtime/Transport"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)
const frame = (message: Message.Message): Uint8Array => {
  const bytes = framing.encode(codec.encode(message) as Uint8Array)
  if (!(bytes instanceof Uint8Array)) throw bytes
  return bytes
}

const failureTag = (exit: Exit.Exit<never, unknown> | undefined): string | undefined =>
  exit === undefined || Exit.isSuccess(exit)
    ? undefined
    : Option.match(Cause.failureOption(exit.cause), {
      onNone: () => (Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"),
      onSome: (e) => (e as { _tag: string })._tag
    })

/** Lets forked fibers (the scheduler, handler fibers) reach their next suspension. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

describe("Connection over a transport, started without a fiber (unsafeStart)", () => {
  it("a socket made by the transport kind carries its transport; a plain one does not", () => {
    assert.isDefined(Transport.fromSocket(MemorySocket.make("transport").socket))
    assert.isUndefined(Transport.fromSocket(MemorySocket.make("socket").socket))
  })

  it.scoped("a silent peer ends with HeartbeatTimeout on the shared scheduler, and onExit runs once", () =>
    Effect.gen(function*() {
      const heartbeatScheduler = yield* HeartbeatScheduler.make
      const memory = MemorySocket.make("transport")
      const connection = yield* Connection.make(memory.socket, {
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.ping({ interval: "1 second", timeout: "3 seconds" }),
        heartbeatScheduler
      })
      const exits: Array<Exit.Exit<never, unknown>> = []
      const runtime = yield* Effect.runtime<never>()
      connection.unsafeStart(runtime, () => undefined, (exit) => exits.push(exit))
      yield* settle
      assert.isTrue(memory.opened())
      yield* TestClock.adjust("2999 millis")
      assert.strictEqual(exits.length, 0, "alive one millisecond before the timeout")
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(exits.map(failureTag), ["HeartbeatTimeout"])
      assert.isTrue(memory.destroyed(), "a timed-out peer is hard-closed")
      assert.strictEqual(heartbeatScheduler.size(), 0, "its beat left the scheduler")
    }))

  it.effect("the stop function interrupts it: transport destroyed, handler fiber interrupted, onExit after both", () =>
    Effect.gen(function*() {
      const memory = MemorySocket.make("transport")
      const connection = yield* Connection.make(memory.socket, { framing, codec })
      const exits: Array<string | undefined> = []
      let handlerInterrupted = false
      const runtime = yield* Effect.runtime<never>()
      const stop = connection.unsafeStart(
        runtime,
        () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (handlerInterrupted = true)))),
        (exit) => exits.push(failureTag(exit))
      )
      memory.push(frame({ _tag: "Who" }))
      yield* settle
      assert.strictEqual(exits.length, 0)
      stop()
      yield* settle
      assert.isTrue(handlerInterrupted, "the handler fiber was interrupted")
      assert.deepStrictEqual(exits, ["interrupted"])
      assert.isTrue(memory.destroyed())
      assert.isFalse(connection.isOpen())
    }))

  it.effect("a failing handler ends it with the handler's error; a dying one with the defect", () =>
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<never>()
      const failing = MemorySocket.make("transport")
      const a = yield* Connection.make(failing.socket, { framing, codec })
      const exitsA: Array<Exit.Exit<never, unknown>> = []
      a.unsafeStart(runtime, () => Effect.fail({ _tag: "Boom" }), (exit) => exitsA.push(exit))
      failing.push(frame({ _tag: "Who" }))
      yield* settle
      assert.deepStrictEqual(exitsA.map(failureTag), ["Boom"])
      assert.isTrue(failing.destroyed())

      const dying = MemorySocket.make("transport")
      const b = yield* Connection.make(dying.socket, { framing, codec })
      const exitsB: Array<Exit.Exit<never, unknown>> = []
      b.unsafeStart(runtime, () => Effect.die("bug"), (exit) => exitsB.push(exit))
      dying.push(frame({ _tag: "Who" }))
      yield* settle
      assert.deepStrictEqual(exitsB.map(failureTag), ["defect"])
    }))

  it.effect("peer end while a handler runs: the handler finishes first, then PeerClosed; a truncated frame is a FrameError", () =>
    Effect.gen(function*() {
      const memory = MemorySocket.make("transport")
      const connection = yield* Connection.make(memory.socket, { framing, codec })
      const handled: Array<string> = []
      const fiber = yield* Effect.fork(
        connection.run((batch) => Effect.sleep("1 second").pipe(Effect.as(batch.forEach((m) => handled.push(m._tag)))))
      )
      yield* settle
      memory.push(frame({ _tag: "Who" }))
      memory.end()
      yield* settle
      assert.isNull(fiber.unsafePoll(), "waits for the handler in flight")
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PeerClosed")
      assert.deepStrictEqual(handled, ["Who"])

      const cut = MemorySocket.make("transport")
      const c = yield* Connection.make(cut.socket, { framing, codec })
      const cutFiber = yield* Effect.fork(c.run(() => undefined))
      yield* settle
      cut.push(frame({ _tag: "Who" }).subarray(0, 5))
      cut.end()
      const truncated = yield* Fiber.join(cutFiber).pipe(Effect.flip)
      assert.strictEqual(truncated._tag, "FrameError")
    }))

  it.effect("a batch with large payloads goes out as one gathered write; small ones as one buffer", () =>
    Effect.gen(function*() {
      const memory = MemorySocket.make("transport")
      const connection = yield* Connection.make(memory.socket, { framing, codec: Codec.bytes })
      const fiber = yield* Effect.fork(connection.run(() => undefined))
      yield* settle
      const large = new Uint8Array(Frame.gatherThreshold).fill(7)
      connection.unsafeSend(new Uint8Array([1, 2]))
      connection.unsafeSend(large)
      connection.unsafeSend(new Uint8Array([3]))
      yield* connection.flushed
      assert.strictEqual(memory.gathered(), 1)
      assert.isTrue(memory.written.includes(large), "the large payload is written by reference")
      const decoder = framing.decoder()
      const frames = memory.written.flatMap((chunk) => decoder.push(chunk) as ReadonlyArray<Uint8Array>)
      assert.deepStrictEqual(frames.map((f) => f.length), [2, Frame.gatherThreshold, 1])
      assert.strictEqual(connection.stats.bytesOut, 3 * 4 + 2 + Frame.gatherThreshold + 1)
      connection.unsafeSend(new Uint8Array([4]))
      yield* connection.flushed
      assert.strictEqual(memory.gathered(), 1, "small payloads alone: a plain write")
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("interrupting run waits for the transport to close and reports interruption", () =>
    Effect.gen(function*() {
      const memory = MemorySocket.make("transport")
      const connection = yield* Connection.make(memory.socket, { framing, codec })
      const fiber = yield* Effect.fork(connection.run(() => undefined))
      yield* settle
      assert.isTrue(memory.opened())
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.isTrue(memory.destroyed())
    }))
})

describe("Connection over a transport: the echo hot path", () => {
  it("a synchronous handler's replies are written inside the data callback, with no flush microtask per chunk", async () => {
    const bytes = Frame.lengthPrefixed()
    const written: Array<Uint8Array> = []
    let handlers: Transport.Handlers | undefined
    const transport: Transport.Transport = {
      remote: "memory",
      start: (h) => {
        handlers = h
      },
      write: (chunk) => {
        written.push(Uint8Array.from(chunk))
        return true
      },
      end: () => {},
      destroy: () => {}
    }
    const socket = Transport.attach({} as Parameters<typeof Connection.unsafeMake>[0], transport)
    const connection = Connection.unsafeMake<Uint8Array>(socket, { framing: bytes, codec: Codec.bytes }, () => 0)
    connection.unsafeStart(Runtime.defaultRuntime, (batch) => {
      for (const frame of batch) assert.isTrue(connection.unsafeSend(frame))
    }, () => {})
    const chunk = bytes.encodeAll([new Uint8Array([1, 2, 3]), new Uint8Array([4])]) as Uint8Array
    const queue = globalThis.queueMicrotask
    let queued = 0
    globalThis.queueMicrotask = (task) => {
      queued++
      queue(task)
    }
    try {
      for (let i = 0; i < 3; i++) {
        handlers!.onData(chunk)
        assert.strictEqual(written.length, i + 1, "the replies went out before onData returned")
        assert.deepStrictEqual(written[i], chunk)
      }
    } finally {
      globalThis.queueMicrotask = queue
    }
    assert.strictEqual(queued, 0)
    // Outside a data callback, a send is flushed by a microtask.
    connection.unsafeSend(new Uint8Array([9]))
    assert.strictEqual(written.length, 3)
    await new Promise<void>((resolve) => queueMicrotask(resolve))
    assert.strictEqual(written.length, 4)
    assert.deepStrictEqual(Array.from(written[3]!), [0, 0, 0, 1, 9])
  })
})
