/**
 * Typed request/response servers for the benchmark, newline-delimited on both
 * sides so only the message handling differs:
 *
 *   raw     JSON.parse / JSON.stringify per line, no validation (the JSON limit)
 *   json    Tether: Frame.lines + Codec.json(Message) through Schema, Request -> Response
 *   msgpack Tether: Frame.lengthPrefixed + Codec.msgpack(Message) (its load speaks msgpack)
 *
 * node bench/build/typed-server.js raw|json|msgpack
 */
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as net from "node:net"

const kind = process.argv[2] ?? "json"

if (kind === "raw") {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      const text = pending + chunk
      let from = 0
      let out = ""
      for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", from)) {
        const request = JSON.parse(text.slice(from, at))
        out += JSON.stringify({ _tag: "Response", id: request.id, body: request.body }) + "\n"
        from = at + 1
      }
      pending = text.slice(from)
      if (out.length > 0) socket.write(out)
    })
    socket.on("error", () => {})
  })
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`)
  })
} else {
  const program = Effect.gen(function*() {
    const server = yield* Server.make<Message.Message>({
      framing: kind === "msgpack" ? Frame.lengthPrefixed() : Frame.lines(),
      // Responses are built from a decoded (validated) request: no need to validate them again.
      codec: kind === "msgpack" ? Codec.msgpack(Message.Message, { trustedEncode: true }) : Codec.json(Message.Message, { trustedEncode: true }),
      handler: (session, message) => {
        if (message._tag !== "Request") return
        session.unsafeSend({ _tag: "Response", id: message.id, body: message.body })
      }
    })
    console.log(`listening on 127.0.0.1:${(server.address as SocketServer.TcpAddress).port}`)
    return yield* Effect.never
  })
  program.pipe(
    Effect.scoped,
    Effect.provide(Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone)),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    NodeRuntime.runMain
  )
}
