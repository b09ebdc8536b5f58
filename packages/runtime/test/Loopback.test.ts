import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)

const startServer = Effect.gen(function*() {
  const server = yield* Server.make({
    framing,
    codec,
    dialect: Heartbeat.tether,
    heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" }),
    login: Server.tetherLogin,
    refuse: (reason) => Message.Failure.make({ code: "TooManyConnections", message: reason }),
    goodbye: (reason) => Message.Bye.make({ reason }),
    peerAddress: NodeTether.peerAddress,
    handler: (session, message) => {
      switch (message._tag) {
        case "Request":
          return session.connection.send({ _tag: "Response", id: message.id, body: message.body }).pipe(Effect.ignore)
        default:
          return Effect.void
      }
    }
  })
  const address = server.address as SocketServer.TcpAddress
  return { server, port: address.port }
})

const ServerLayer = Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone)

const connect = (port: number, user: string) =>
  Client.make({
    connect: NodeTether.connect({ port, connectTimeout: "2 seconds" }),
    framing,
    codec,
    dialect: Heartbeat.tether,
    login: Client.tetherLogin(user, "secret"),
    correlate: Client.tetherCorrelate,
    reconnect: false
  })

describe("loopback", () => {
  it.live("login and request/response", () =>
    Effect.gen(function*() {
      const { port, server } = yield* startServer
      const client = yield* connect(port, "alice")
      yield* client.awaitConnected
      const answer = yield* Client.request(client, { hello: ["world", 1] }, { timeout: "2 seconds" })
      assert.deepStrictEqual(answer, { hello: ["world", 1] })
      assert.strictEqual(server.registry.count(), 1)
      assert.strictEqual(server.registry.get("alice")?.user, "alice")
    }).pipe(Effect.scoped, Effect.provide(ServerLayer)))
})
