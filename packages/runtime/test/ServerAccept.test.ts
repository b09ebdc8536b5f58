/**
 * `Server.accept`: a second source of sessions (a WebSocket endpoint's) with
 * its own framing, in the same registry, broadcast and drain as the sockets
 * of the server's `SocketServer`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as MemoryServer from "./fixtures/MemoryServer.js"
import * as MemorySocket from "./fixtures/MemorySocket.js"

const stream = Frame.lengthPrefixed()
const messages = Frame.messages()
const codec = Codec.json(Message.Message)
const text = (m: Message.Message) => JSON.stringify(m)
const utf8 = (s: string) => new TextEncoder().encode(s)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

/** What a message-framed socket got: one JSON text per written chunk. */
const textsOf = (socket: MemorySocket.MemorySocket) => socket.written.map((chunk) => JSON.parse(new TextDecoder().decode(chunk)))

const streamed = (socket: MemorySocket.MemorySocket): Array<Message.Message> => {
  const decoder = stream.decoder()
  return socket.written.flatMap((chunk) => (decoder.push(chunk) as Array<Uint8Array>).map((f) => codec.decode(f) as Message.Message))
}

const start = Effect.gen(function*() {
  const memory = MemoryServer.make()
  const scope = yield* Scope.make()
  const server: Server.Server<Message.Message> = yield* Server.make<Message.Message>({
    framing: stream,
    codec,
    dialect: TetherProtocol.dialect,
    heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
    login: TetherProtocol.serverLogin,
    goodbye: (reason) => ({ _tag: "Bye", reason }),
    handler: (session, message) => {
      if (message._tag === "Say") {
        server.unsafeBroadcast({ _tag: "Said", from: session.user!, text: message.text, at: 0, seq: message.id })
      }
    }
  }).pipe(Scope.extend(scope), Effect.provide(Layer.merge(memory.layer, Server.Authenticator.layerAnyone)))
  yield* settle
  return { server, scope, memory }
})

describe("Server.accept", () => {
  it.effect("a message-framed socket joins the same sessions: registry, login, broadcast encoded once for both framings", () =>
    Effect.gen(function*() {
      const { memory, scope, server } = yield* start
      const tcp = MemorySocket.make("transport")
      yield* memory.accept(tcp.socket)
      const ws = MemorySocket.make("transport")
      yield* server.accept(ws.socket, { remote: "browser:1", framing: messages })
      yield* settle
      tcp.push(stream.encode(codec.encode({ _tag: "Login", user: "tom", password: "pw" }) as Uint8Array) as Uint8Array)
      ws.push(utf8(text({ _tag: "Login", user: "wendy", password: "pw" })))
      yield* settle
      assert.deepStrictEqual(server.registry.list().map((s) => s.user).sort(), ["tom", "wendy"])
      assert.strictEqual(server.registry.list().find((s) => s.user === "wendy")?.remote, "browser:1")
      // Two messages in one WebSocket message are not two frames: garbage (below). One each:
      ws.push(utf8(text({ _tag: "Say", id: 1, text: "from the browser" })))
      tcp.push(stream.encode(codec.encode({ _tag: "Say", id: 2, text: "from the terminal" }) as Uint8Array) as Uint8Array)
      yield* settle
      const said = (m: { readonly _tag: string }) => m._tag === "Said"
      assert.deepStrictEqual(textsOf(ws).filter(said).map((m) => m.text), ["from the browser", "from the terminal"])
      assert.deepStrictEqual(streamed(tcp).filter(said).map((m) => (m as Message.Said).text), ["from the browser", "from the terminal"])
      assert.deepInclude(textsOf(ws)[0], { _tag: "LoginResult", status: 0 })
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("a name in use over TCP gets 100 over the other source too", () =>
    Effect.gen(function*() {
      const { memory, scope, server } = yield* start
      const tcp = MemorySocket.make("transport")
      yield* memory.accept(tcp.socket)
      tcp.push(stream.encode(codec.encode({ _tag: "Login", user: "tom", password: "pw" }) as Uint8Array) as Uint8Array)
      const ws = MemorySocket.make("transport")
      yield* server.accept(ws.socket, { remote: "browser:2", framing: messages })
      yield* settle
      ws.push(utf8(text({ _tag: "Login", user: "tom", password: "pw" })))
      yield* settle
      assert.strictEqual(textsOf(ws)[0].status, 100)
      assert.isTrue(ws.ended() || ws.destroyed())
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("drains sessions of both sources with Bye; a socket accepted after the drain began gets Bye and is closed", () =>
    Effect.gen(function*() {
      const { scope, server } = yield* start
      const ws = MemorySocket.make("transport")
      yield* server.accept(ws.socket, { remote: "browser:3", framing: messages })
      yield* settle
      ws.push(utf8(text({ _tag: "Login", user: "wendy", password: "pw" })))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(textsOf(ws).at(-1), { _tag: "Bye", reason: "shutting down" })
      assert.isTrue(ws.ended())
      const late = MemorySocket.make("transport")
      yield* Effect.fork(server.accept(late.socket, { remote: "browser:4", framing: messages }))
      yield* settle
      assert.deepStrictEqual(textsOf(late), [{ _tag: "Bye", reason: "shutting down" }])
      assert.isTrue(late.ended())
      assert.strictEqual(server.stats.refused, 1)
    }))
})
