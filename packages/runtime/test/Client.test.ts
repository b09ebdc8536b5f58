import * as Socket from "@effect/platform/Socket"
import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as MemorySocket from "./fixtures/MemorySocket.js"
import * as ScriptedServer from "./fixtures/ScriptedServer.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

describe("Client reconnect", () => {
  it.scoped("reconnect delays follow the schedule: 1, 2, 4, ... capped at 32 s, 10 attempts", () =>
    Effect.gen(function*() {
      let dials = 0
      const client = yield* Client.make({
        connect: Effect.suspend(() => {
          dials++
          return Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause: new Error("ECONNREFUSED") }))
        }),
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        reconnect: { jitter: false }
      })
      yield* settle
      assert.strictEqual(dials, 1)
      const expected = [1, 2, 4, 8, 16, 32, 32, 32, 32, 32]
      for (const [i, seconds] of expected.entries()) {
        const state = yield* client.state
        assert.strictEqual(state._tag, "Reconnecting")
        if (state._tag === "Reconnecting") {
          assert.strictEqual(state.delayMs, seconds * 1000)
          assert.strictEqual(state.attempt, i + 1)
          assert.strictEqual(state.maxAttempts, 10)
        }
        yield* TestClock.adjust(seconds * 1000 - 1)
        yield* settle
        assert.strictEqual(dials, i + 1, `no dial before ${seconds} s`)
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(dials, i + 2)
      }
      const final = yield* client.state
      assert.strictEqual(final._tag, "GaveUp")
      const error = yield* client.awaitConnected.pipe(Effect.flip)
      assert.strictEqual(error._tag, "ConnectionLost")
    }))

  it.scoped("jittered delays stay within 0.8..1.2 of the exponential and under the cap", () =>
    Effect.gen(function*() {
      const client = yield* Client.make({
        connect: Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause: new Error("ECONNREFUSED") })),
        framing,
        codec
      })
      yield* settle
      const delays: Array<number> = []
      for (let i = 0; i < 10; i++) {
        const state = yield* client.state
        if (state._tag !== "Reconnecting") break
        delays.push(state.delayMs)
        yield* TestClock.adjust(state.delayMs)
        yield* settle
      }
      assert.strictEqual(delays.length, 10)
      delays.forEach((delay, i) => {
        const base = Math.min(2 ** i * 1000, 32_000)
        assert.isAtLeast(delay, Math.min(base * 0.8, 32_000))
        assert.isAtMost(delay, Math.min(base * 1.2, 32_000))
      })
    }))
})

describe("Client calls", () => {
  const connected = Effect.gen(function*() {
    const memory = MemorySocket.make()
    const client = yield* Client.make({
      connect: Effect.succeed(memory.socket),
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      correlate: TetherProtocol.correlate,
      reconnect: false
    })
    yield* client.awaitConnected
    return { client, memory }
  })

  it.scoped("a request without an answer fails with RequestTimeout at its timeout", () =>
    Effect.gen(function*() {
      const { client } = yield* connected
      const call = yield* Effect.fork(TetherProtocol.request(client, "hello", { timeout: "2 seconds" }))
      yield* TestClock.adjust("1999 millis")
      assert.isNull(call.unsafePoll())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(call).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RequestTimeout")
    }))

  it.scoped("an answer with the request's id completes it", () =>
    Effect.gen(function*() {
      const { client, memory } = yield* connected
      const call = yield* Effect.fork(TetherProtocol.request(client, "hello", { timeout: "2 seconds" }))
      yield* settle
      memory.push(framing.encode(codec.encode({ _tag: "Response", id: 1, body: { ok: true } }) as Uint8Array) as Uint8Array)
      assert.deepStrictEqual(yield* Fiber.join(call), { ok: true })
    }))

  it.scoped("pending requests fail with ConnectionLost when the connection drops", () =>
    Effect.gen(function*() {
      const { client, memory } = yield* connected
      const call = yield* Effect.fork(TetherProtocol.request(client, "hello", { timeout: "1 hour" }))
      yield* settle
      memory.reset()
      const error = yield* Fiber.join(call).pipe(Effect.flip)
      assert.strictEqual(error._tag, "ConnectionLost")
      const afterwards = yield* TetherProtocol.request(client, "again").pipe(Effect.flip)
      assert.strictEqual(afterwards._tag, "ConnectionLost", "no connection: fails at once, never hangs")
    }))
})

describe("Client servers, login and events", () => {
  it.scoped("servers are tried in turn; the login is built per attempt; onLogin runs after each login; events skip nothing", () =>
    Effect.gen(function*() {
      const one = ScriptedServer.make()
      const two = ScriptedServer.make()
      let built = 0
      const logins: Array<Client.LoginInfo> = []
      const client = yield* Client.make({
        connect: [one.connect, two.connect],
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        login: {
          ...TetherProtocol.clientLogin("alice", "secret"),
          message: () => Message.Login.make({ user: "alice", password: `attempt-${++built}` })
        },
        onLogin: (info) => Effect.sync(() => logins.push(info)),
        reconnect: { base: "1 second", jitter: false }
      })
      const events: Array<string> = []
      yield* client.events.pipe(
        Stream.runForEach((s) => Effect.sync(() => events.push("server" in s ? `${s._tag}@${s.server}` : s._tag))),
        Effect.forkScoped
      )
      yield* settle
      one.peers[0]!.send(Message.LoginResult.make({ status: 0 }))
      yield* settle
      one.peers[0]!.memory.reset()
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(two.dials(), 1, "the lost server's successor")
      assert.deepStrictEqual(two.peers[0]!.take(), [Message.Login.make({ user: "alice", password: "attempt-2" })])
      two.peers[0]!.send(Message.LoginResult.make({ status: 0 }))
      yield* settle
      assert.deepStrictEqual(logins, [{ server: 0, reconnected: false }, { server: 1, reconnected: true }])
      assert.deepStrictEqual(events, ["Connecting@0", "Connected@0", "Reconnecting@1", "Connecting@1", "Connected@1"])
    }))
})

describe("Client login lost with its connection", () => {
  const retrying = (one: ScriptedServer.ScriptedServer, two: ScriptedServer.ScriptedServer) =>
    Client.make({
      connect: [one.connect, two.connect],
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      login: { ...TetherProtocol.clientLogin("alice", "secret"), retryOnReconnect: [100] },
      reconnect: { base: "1 second", jitter: false }
    })

  it.scoped("a login whose answer was lost makes 'already connected' on the next server a retry, not the end", () =>
    Effect.gen(function*() {
      const one = ScriptedServer.make()
      const two = ScriptedServer.make()
      const client = yield* retrying(one, two)
      yield* settle
      // The first server got the login (and may hold the session) but its answer never came back.
      assert.strictEqual(one.peers[0]!.take().length, 1)
      one.peers[0]!.memory.reset()
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      two.peers[0]!.send(Message.LoginResult.make({ status: 100, reason: "user already connected" }))
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.strictEqual(one.dials(), 2, "tried again")
      one.peers[1]!.send(Message.LoginResult.make({ status: 0 }))
      yield* settle
      assert.strictEqual((yield* client.state)._tag, "Connected")
    }))

  it.scoped("a first login refused on its first attempt still ends the client", () =>
    Effect.gen(function*() {
      const one = ScriptedServer.make()
      const two = ScriptedServer.make()
      const client = yield* retrying(one, two)
      yield* settle
      one.peers[0]!.send(Message.LoginResult.make({ status: 100, reason: "user already connected" }))
      yield* settle
      const error = yield* client.awaitConnected.pipe(Effect.flip)
      assert.strictEqual(error._tag, "LoginRefused")
      assert.strictEqual(two.dials(), 0)
    }))
})
