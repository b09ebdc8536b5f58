import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

const startServer = Effect.gen(function*() {
  const server: Server.Server<Message.Message> = yield* Server.make<Message.Message>({
    framing,
    codec,
    dialect: TetherProtocol.dialect,
    heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
    login: TetherProtocol.serverLogin,
    refuse: (reason) => Message.Failure.make({ code: "TooManyConnections", message: reason }),
    goodbye: (reason) => Message.Bye.make({ reason }),
    peerAddress: NodeTether.peerAddress,
    handler: (session, message) => {
      switch (message._tag) {
        case "Request":
          // A request for "never" is left unanswered (for ConnectionLost tests).
          return message.body === "never"
            ? Effect.void
            : session.connection.send({ _tag: "Response", id: message.id, body: message.body }).pipe(Effect.ignore)
        case "Say":
          return server.broadcast(
            Message.Said.make({ from: session.user!, text: message.text, at: 0, seq: 0 }),
            { except: session }
          ).pipe(Effect.zipRight(session.connection.send(Message.Ack.make({ id: message.id }))), Effect.ignore)
        default:
          return Effect.void
      }
    }
  })
  const address = server.address as SocketServer.TcpAddress
  return { server, port: address.port }
})

const ServerLayer = Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone)

const connect = (port: number, user: string, options: Partial<Client.Options<Message.Message>> = {}) =>
  Client.make({
    connect: NodeTether.connect({ port, connectTimeout: "2 seconds" }),
    framing,
    codec,
    dialect: TetherProtocol.dialect,
    login: TetherProtocol.clientLogin(user, "secret"),
    correlate: TetherProtocol.correlate,
    reconnect: false,
    ...options
  })

describe("loopback", () => {
  it.live("login and request/response", () =>
    Effect.gen(function*() {
      const { port, server } = yield* startServer
      const client = yield* connect(port, "alice")
      yield* client.awaitConnected
      const answer = yield* TetherProtocol.request(client, { hello: ["world", 1] }, { timeout: "2 seconds" })
      assert.deepStrictEqual(answer, { hello: ["world", 1] })
      assert.strictEqual(server.registry.count(), 1)
      assert.strictEqual(server.registry.get("alice")?.user, "alice")
    }).pipe(Effect.scoped, Effect.provide(ServerLayer)))

  it.live("broadcast reaches three clients, not the sender", () =>
    Effect.gen(function*() {
      const { port } = yield* startServer
      const heard = new Map<string, Array<string>>()
      const clients = yield* Effect.forEach(["alice", "bob", "carol", "dave"], (user) =>
        Effect.gen(function*() {
          heard.set(user, [])
          const client = yield* connect(port, user, {
            onMessage: (m) => Effect.sync(() => m._tag === "Said" && heard.get(user)!.push(`${m.from}:${m.text}`))
          })
          yield* client.awaitConnected
          return client
        }))
      yield* TetherProtocol.say(clients[0]!, "hello all", { timeout: "2 seconds" })
      // A round trip on each receiver orders it after the broadcast.
      yield* Effect.forEach(clients, (c) => TetherProtocol.request(c, null, { timeout: "2 seconds" }), { discard: true })
      assert.deepStrictEqual(heard.get("alice"), [])
      for (const user of ["bob", "carol", "dave"]) assert.deepStrictEqual(heard.get(user), ["alice:hello all"])
    }).pipe(Effect.scoped, Effect.provide(ServerLayer)))

  it.live("pending requests fail with ConnectionLost when the server goes away", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(ServerLayer, scope)
      const { port } = yield* startServer.pipe(Scope.extend(scope), Effect.provide(context))
      const client = yield* connect(port, "alice")
      yield* client.awaitConnected
      const pending = yield* Effect.fork(TetherProtocol.request(client, "never", { timeout: "10 seconds" }))
      yield* Effect.sleep("50 millis")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const error = yield* Fiber.join(pending).pipe(Effect.flip)
      assert.strictEqual(error._tag, "ConnectionLost")
      assert.isBelow(Date.now() - started, 2000, "promptly, not at the request timeout")
    }).pipe(Effect.scoped))

  it.live("the client reconnects when the server comes back on the same port", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const context = yield* Layer.buildWithScope(ServerLayer, first)
      const { port } = yield* startServer.pipe(Scope.extend(first), Effect.provide(context))
      const states: Array<string> = []
      const client = yield* connect(port, "alice", {
        reconnect: { base: "50 millis", max: "200 millis", attempts: 50, jitter: false }
      })
      yield* client.states.pipe(Stream.runForEach((s) => Effect.sync(() => states.push(s._tag))), Effect.forkScoped)
      yield* client.awaitConnected
      yield* Scope.close(first, Exit.void)
      for (let i = 0; i < 100 && !states.includes("Reconnecting"); i++) yield* Effect.sleep("10 millis")
      assert.include(states, "Reconnecting")
      const second = yield* Scope.make()
      const again = yield* Layer.buildWithScope(
        Layer.merge(NodeTether.layerServer({ port }), Server.Authenticator.layerAnyone),
        second
      )
      yield* startServer.pipe(Scope.extend(second), Effect.provide(again))
      for (let i = 0; i < 200 && (yield* client.state)._tag !== "Connected"; i++) yield* Effect.sleep("10 millis")
      assert.strictEqual((yield* client.state)._tag, "Connected")
      assert.deepStrictEqual(yield* TetherProtocol.request(client, "back", { timeout: "2 seconds" }), "back")
      yield* Scope.close(second, Exit.void)
    }).pipe(Effect.scoped))
})
