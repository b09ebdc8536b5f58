import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Metrics from "@tether/runtime/Metrics"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
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
      const [ok, again, ...rest] = received(socket)
      assert.deepInclude(ok, { _tag: "LoginResult", status: 0 })
      assert.match((ok as Message.LoginResult).resumeSecret ?? "", /^[A-Za-z0-9_-]{43}$/, "a resume secret")
      assert.deepStrictEqual(again, { _tag: "LoginResult", status: 100, reason: "already logged in" })
      assert.deepStrictEqual(rest, [])
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

describe("Server takeover (resume secret)", () => {
  const login = (user: string, resumeSecret?: string): Message.Message =>
    resumeSecret === undefined ? { _tag: "Login", user, password: "pw" } : { _tag: "Login", user, password: "pw", resumeSecret }
  const secretOf = (socket: MemorySocket.MemorySocket) => {
    const answer = received(socket)[0] as Message.LoginResult
    assert.strictEqual(answer.status, 0)
    return answer.resumeSecret!
  }
  const kicksTakenOver = Metric.value(Metrics.kicks.pipe(Metric.tagged("reason", "taken over"))).pipe(
    Effect.map((state) => state.count)
  )

  it.effect("the live session's secret takes it over at once (no clock moves); a wrong or missing one gets 100", () =>
    Effect.gen(function*() {
      const left: Array<string> = []
      const { connect, server } = yield* startServer({
        onLeave: (session, reason) => Effect.sync(() => left.push(`${session.user}: ${reason}`))
      })
      const kicksBefore = yield* kicksTakenOver
      const old = yield* connect
      old.push(frame(login("alice")))
      yield* settle
      const secret = secretOf(old)
      const oldSession = server.registry.get("alice")

      const wrong = yield* connect
      wrong.push(frame(login("alice", secret.slice(1) + (secret[0] === "A" ? "B" : "A"))))
      const missing = yield* connect
      missing.push(frame(login("alice")))
      yield* settle
      for (const refused of [wrong, missing]) {
        assert.deepStrictEqual(received(refused), [{ _tag: "LoginResult", status: 100, reason: "user already connected" }])
      }
      assert.isFalse(old.ended() || old.destroyed(), "the live session was left alone")
      assert.strictEqual(server.registry.get("alice"), oldSession)

      const fresh = yield* connect
      fresh.push(frame(login("alice", secret)))
      yield* settle
      assert.strictEqual(secretOf(fresh), secret, "the session keeps its secret across a takeover")
      assert.deepStrictEqual(received(old).at(-1), { _tag: "Bye", reason: "taken over" })
      assert.isTrue(old.ended(), "the old connection was closed (gracefully: its goodbye flushed)")
      assert.notStrictEqual(server.registry.get("alice"), oldSession)
      assert.strictEqual(server.registry.count(), 1)
      assert.deepStrictEqual(left, ["alice: taken over"], "its end handled (onLeave) before the new login")
      assert.strictEqual((yield* kicksTakenOver) - kicksBefore, 1, "counted as a kick")


      // Cut off again before it read that answer: the same secret still proves it.
      const again = yield* connect
      again.push(frame(login("alice", secret)))
      yield* settle
      assert.strictEqual(secretOf(again), secret)
      assert.isTrue(fresh.ended())
      assert.strictEqual(server.registry.count(), 1)
      // A fresh login (no takeover) gets a secret of its own.
      const other = yield* connect
      other.push(frame(login("bob")))
      yield* settle
      assert.notStrictEqual(secretOf(other), secret)
    }))

  it.effect("an old connection that cannot flush its goodbye (a peer that stopped reading) is aborted after 1 s", () =>
    Effect.gen(function*() {
      const { connect, server } = yield* startServer({ heartbeat: Heartbeat.off })
      const old = yield* connect
      old.push(frame(login("bob")))
      yield* settle
      const secret = secretOf(old)
      old.stallWrites()
      const fresh = yield* connect
      fresh.push(frame(login("bob", secret)))
      yield* settle
      assert.deepStrictEqual(received(fresh), [], "waits for the old session to end")
      yield* TestClock.adjust("999 millis")
      yield* settle
      assert.isFalse(old.destroyed())
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.isTrue(old.destroyed(), "aborted")
      assert.match(secretOf(fresh), /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(server.registry.count(), 1)
    }))
})

describe("Server drain", () => {
  /** alice logs in and sends Request 1, then the server's scope starts closing while its handler may still run. */
  const drainingWithRequest = (options: Partial<Server.Options<Message.Message, never, never>>) =>
    Effect.gen(function*() {
      const { connect, scope } = yield* startServer(options)
      const socket = yield* connect
      socket.push(frame({ _tag: "Login", user: "alice", password: "pw" }))
      socket.push(frame({ _tag: "Request", id: 1, body: null }))
      yield* settle
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      return { socket, closing }
    })

  it.effect("waits for the handler in flight, delivers what it queued, says Bye, then closes", () =>
    Effect.gen(function*() {
      const { socket, closing } = yield* drainingWithRequest({
        handler: (session, message) =>
          message._tag === "Request"
            ? Effect.sleep("5 seconds").pipe(
              Effect.zipRight(session.connection.send({ _tag: "Response", id: message.id, body: "done" })),
              Effect.ignore
            )
            : Effect.void
      })
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
      const { socket, closing } = yield* drainingWithRequest({
        drainTimeout: "10 seconds",
        heartbeat: Heartbeat.off,
        handler: (_session, message) => message._tag === "Request" ? Effect.never : Effect.void
      })
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
