import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Pool from "@tether/runtime/Pool"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

describe("Pool", () => {
  it.live("hands out connected clients, reuses them, and replaces a broken one", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        login: TetherProtocol.serverLogin,
        handler: (session, message) =>
          message._tag === "Request"
            ? Effect.ignore(session.connection.send({ _tag: "Response", id: message.id, body: session.id }))
            : Effect.void
      })
      const { port } = server.address as SocketServer.TcpAddress
      let logins = 0
      const pool = yield* Pool.make({
        connect: NodeTether.connect({ port, connectTimeout: "1 second" }),
        framing,
        codec,
        dialect: TetherProtocol.dialect,
        get login() {
          logins++
          return TetherProtocol.clientLogin(`user${logins}`, "pw")
        },
        correlate: TetherProtocol.correlate,
        max: 2,
        acquireTimeout: "3 seconds"
      })
      const first = yield* pool.use((client) => TetherProtocol.request(client, null))
      const again = yield* pool.use((client) => TetherProtocol.request(client, null))
      assert.strictEqual(again, first, "an idle healthy client is reused")
      assert.strictEqual(server.connections(), 1)

      // Two at once: a second connection is opened, within max.
      const both = yield* Effect.all(
        [0, 1].map(() => pool.use((client) => Effect.zipLeft(TetherProtocol.request(client, null), Effect.sleep("50 millis")))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(both).size, 2)

      // Break every pooled connection from the server side: none is handed out broken.
      for (const session of server.registry.list()) yield* server.kick(session, "test")
      for (let i = 0; i < 50 && server.connections() > 0; i++) yield* Effect.sleep("20 millis")
      const fresh = yield* pool.use((client) => TetherProtocol.request(client, null, { timeout: "1 second" }))
      assert.notInclude(both, fresh)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone))
    ))

  it.live("get fails with PoolTimeout when no healthy connection can be had in time", () =>
    Effect.gen(function*() {
      const pool = yield* Pool.make({
        connect: NodeTether.connect({ port: 1, connectTimeout: "100 millis" }),
        framing,
        codec,
        acquireTimeout: "300 millis"
      })
      const started = Date.now()
      const error = yield* pool.use(() => Effect.void).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PoolTimeout")
      assert.isBelow(Date.now() - started, 2000)
    }).pipe(Effect.scoped))
})
