/**
 * Tether's bytes server started in the bench's own process (length-prefixed
 * frames, ping every second, 3 s timeout, anyone admitted), for the benches
 * that read this process's heap or the server's live count directly rather
 * than /proc of a child (idle-memory, heap-snapshot, accept-rate). One copy,
 * so those three always measure the same configuration.
 */
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

export interface InProcessServer {
  readonly port: number
  /** Connections accepted and running on the server. */
  readonly connections: () => number
  /** Closes the server's scope (not awaited). */
  readonly stop: () => Promise<void>
}

/** Starts the server on a free port; resolves once it listens. */
export const startInProcess = async (handler: Server.Options<Uint8Array, never, never>["handler"]): Promise<InProcessServer> => {
  let release: () => void = () => {}
  const done = new Promise<void>((r) => (release = r))
  let port = 0
  let connections = () => 0
  await new Promise<void>((ready) => {
    void Effect.runPromise(
      Effect.gen(function*() {
        const server = yield* Server.make<Uint8Array>({
          framing: Frame.lengthPrefixed(),
          codec: Codec.bytes,
          dialect: Heartbeat.bytes,
          heartbeat: { ...Heartbeat.ping({ interval: "1 second", timeout: "3 seconds" }), answers: false },
          handler
        })
        port = (server.address as SocketServer.TcpAddress).port
        connections = server.connections
        ready()
        yield* Effect.promise(() => done)
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.merge(NodeTether.layerServer({ port: 0, backlog: 4096 }), Server.Authenticator.layerAnyone)),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    )
  })
  return { port, connections, stop: async () => release() }
}
