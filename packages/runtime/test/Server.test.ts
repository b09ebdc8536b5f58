import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as MemoryServer from "./fixtures/MemoryServer.js"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

const frame = (message: Message.Message): Uint8Array => framing.encode(codec.encode(message) as Uint8Array) as Uint8Array

const received = (socket: MemorySocket.MemorySocket): Array<Message.Message> => {
  const decoder = framing.decoder()
  return socket.written.flatMap((chunk) => (decoder.push(chunk) as Array<Uint8Array>).map((f) => codec.decode(f) as Message.Message))
}

/** Bounded number of scheduler turns for forked fibers to make progress. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

const startServer = (
  options: Partial<Server.Options<Message.Message, never, never>> = {},
  users: Record<string, string> = { alice: "pw", bob: "pw" }
) =>
  Effect.gen(function*() {
    const memory = MemoryServer.make()
    const scope = yield* Scope.make()
    const server = yield* Server.make<Message.Message, never, never>({
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
      login: TetherProtocol.serverLogin,
      loginTimeout: "3 seconds",
      goodbye: (reason) => ({ _tag: "Bye", reason }),
      handler: () => Effect.void,
      ...options
    }).pipe(
      Scope.extend(scope),
      Effect.provide(Layer.merge(memory.layer, Server.Authenticator.layerUsers(users)))
    )
    yield* settle
    const connect = Effect.gen(function*() {
      const socket = MemorySocket.make()
      yield* memory.accept(socket.socket)
      yield* settle
      return socket
    })
    return { server, scope, connect, memory }
  })

// Every case runs against a platform socket and against a socket carrying a
// Tether transport (the path NodeTether.layerServer's connections take).
const suite = (_kind: MemorySocket.Kind) => {
describe("Server login", () => {
  it.effect("closes a connection that never logs in after the login timeout", () =>
    Effect.gen(function*() {
      const { connect, server } = yield* startServer()
      const socket = yield* connect
      assert.strictEqual(server.connections(), 1)
      yield* TestClock.adjust("2999 millis")
      assert.isFalse(socket.destroyed())
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.isTrue(socket.destroyed())
      assert.strictEqual(server.connections(), 0)
    }))

  it.effect("status 0 on a good login, 100 on a second login, and the deadline is lifted", () =>
    Effect.gen(function*() {
      const { connect, server } = yield* startServer()
      const socket = yield* connect
      socket.push(frame({ _tag: "Login", user: "alice", password: "pw" }))
      yield* settle
      socket.push(frame({ _tag: "Login", user: "alice", password: "pw" }))
      yield* settle
      assert.deepStrictEqual(received(socket), [
        { _tag: "LoginResult", status: 0 },
        { _tag: "LoginResult", status: 100, reason: "already logged in" }
      ])
      assert.strictEqual(server.registry.get("alice")?.user, "alice")
      // Past the login timeout, still alive (pings answered keep it so).
      yield* TestClock.adjust("4 seconds")
      yield* settle
      assert.isFalse(socket.destroyed())
      assert.strictEqual(server.registry.count(), 1)
    }))

  it.effect("a wrong password gets 5 and a close; a name in use gets 100; a first message that is not a login gets 5", () =>
    Effect.gen(function*() {
      const handled: Array<string> = []
      const { connect, server } = yield* startServer({
        handler: (_session, message) => Effect.sync(() => handled.push(message._tag))
      })
      const wrong = yield* connect
      wrong.push(frame({ _tag: "Login", user: "alice", password: "nope" }))
      wrong.push(frame({ _tag: "Who" }))
      yield* settle
      assert.deepStrictEqual(received(wrong), [
        { _tag: "LoginResult", status: 5, reason: "invalid user name or password" }
      ])
      assert.isTrue(wrong.ended(), "closed after the answer was flushed")

      const first = yield* connect
      first.push(frame({ _tag: "Login", user: "bob", password: "pw" }))
      yield* settle
      const second = yield* connect
      second.push(frame({ _tag: "Login", user: "bob", password: "pw" }))
      yield* settle
      assert.deepStrictEqual(received(second), [{ _tag: "LoginResult", status: 100, reason: "user already connected" }])
      assert.strictEqual(server.registry.get("bob"), server.registry.list()[0])

      const rude = yield* connect
      rude.push(frame({ _tag: "Who" }))
      yield* settle
      assert.deepStrictEqual(received(rude), [
        { _tag: "LoginResult", status: 5, reason: "the first message must be a login" }
      ])
      assert.deepStrictEqual(handled, [], "nothing reached the handler before a login")
      assert.strictEqual(server.registry.count(), 1)
    }))
})

describe("Server drain", () => {
  it.effect("waits for the handler in flight, delivers what it queued, says Bye, then closes", () =>
    Effect.gen(function*() {
      const { connect, scope } = yield* startServer({
        handler: (session, message) =>
          message._tag === "Request"
            ? Effect.sleep("5 seconds").pipe(
              Effect.zipRight(session.connection.send({ _tag: "Response", id: message.id, body: "done" })),
              Effect.ignore
            )
            : Effect.void
      })
      const socket = yield* connect
      socket.push(frame({ _tag: "Login", user: "alice", password: "pw" }))
      socket.push(frame({ _tag: "Request", id: 1, body: null }))
      yield* settle
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("4 seconds")
      yield* settle
      assert.isNull(closing.unsafePoll(), "still draining while the handler runs")
      yield* TestClock.adjust("1 seconds")
      yield* Fiber.join(closing)
      const tags = received(socket).map((m) => m._tag).filter((tag) => tag !== "Ping")
      assert.deepStrictEqual(tags, ["LoginResult", "Response", "Bye"])
      assert.isFalse(socket.destroyed(), "a drained connection is closed gracefully")
    }))

  it.effect("interrupts a stuck handler after the drain timeout", () =>
    Effect.gen(function*() {
      const { connect, scope } = yield* startServer({
        drainTimeout: "10 seconds",
        heartbeat: Heartbeat.off,
        handler: (_session, message) => message._tag === "Request" ? Effect.never : Effect.void
      })
      const socket = yield* connect
      socket.push(frame({ _tag: "Login", user: "alice", password: "pw" }))
      socket.push(frame({ _tag: "Request", id: 1, body: null }))
      yield* settle
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("9999 millis")
      yield* settle
      assert.isNull(closing.unsafePoll())
      yield* TestClock.adjust("1 millis")
      yield* settle
      yield* Fiber.join(closing)
      assert.isTrue(socket.destroyed(), "the stuck connection was interrupted and destroyed")
    }))
})
}

for (const kind of ["socket", "transport"] as const) {
  describe(`over a ${kind}`, () => {
    beforeAll(() => MemorySocket.useKind(kind))
    suite(kind)
  })
}
