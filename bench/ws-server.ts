/**
 * WebSocket servers for the benchmark, both answering Tether `Request`
 * messages (JSON text, one per WebSocket message) with a `Response`:
 *
 *   raw     the `ws` library alone: JSON.parse / JSON.stringify per message,
 *           no validation; with --heartbeat, a `ws` ping every second
 *   tether  Tether's WebSocket transport (NodeHttp + NodeWebSocket, the
 *           callback driver) into a `Server.make` session, Schema-typed
 *           (Codec.json(Message)); with --heartbeat, a Tether Ping every
 *           second and a 3 s timeout (the client answers Pong)
 *
 * node bench/build/ws-server.js raw|tether [--heartbeat]
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeHttp from "@tether/node/NodeHttp"
import * as NodeTether from "@tether/node/NodeTether"
import * as NodeWebSocket from "@tether/node/NodeWebSocket"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Runtime from "effect/Runtime"
import { WebSocketServer } from "ws"

const kind = process.argv[2] ?? "tether"
const heartbeat = process.argv.includes("--heartbeat")

if (kind === "raw") {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024 })
  wss.on("connection", (ws) => {
    ws.on("message", (data) => {
      const request = JSON.parse(data.toString())
      ws.send(JSON.stringify({ _tag: "Response", id: request.id, body: request.body }))
    })
    ws.on("error", () => {})
  })
  if (heartbeat) {
    setInterval(() => {
      for (const ws of wss.clients) ws.ping()
    }, 1000)
  }
  wss.on("listening", () => console.log(`listening on 127.0.0.1:${(wss.address() as { port: number }).port}`))
} else {
  const program = Effect.gen(function*() {
    const framing = Frame.messages()
    const server = yield* Server.make<Message.Message>({
      framing: Frame.lengthPrefixed(),
      // Responses are built from a decoded (validated) request: no need to validate them again.
      codec: Codec.json(Message.Message, { trustedEncode: true }),
      ...(heartbeat
        ? { dialect: TetherProtocol.dialect, heartbeat: Heartbeat.ping({ interval: "1 second", timeout: "3 seconds" }) }
        : {}),
      handler: (session, message) => {
        if (message._tag !== "Request") return
        session.unsafeSend({ _tag: "Response", id: message.id, body: message.body })
      }
    })
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const upgrade = NodeWebSocket.upgrade("/", () => (socket, remote) => server.accept(socket, { remote, framing }), runFork)
    const address = yield* NodeHttp.serve(HttpRouter.empty, { port: 0, webSockets: [upgrade] })
    console.log(`listening on 127.0.0.1:${address.port}`)
    return yield* Effect.never
  })
  program.pipe(
    Effect.scoped,
    Effect.provide(Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone)),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    NodeRuntime.runMain
  )
}
