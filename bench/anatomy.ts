/**
 * Where the heap of an idle connection goes: the same 2,000 idle connections
 * held by servers that add one layer at a time (after GC, in-process; the
 * load comes from a child process). Informs the performance work.
 *
 *   node --expose-gc bench/build/anatomy.js [--conns 2000]
 */
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import type * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const at = process.argv.indexOf("--conns")
const conns = at === -1 ? 2000 : Number(process.argv[at + 1])
const gc = (globalThis as { gc?: () => void }).gc!
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const heap = async () => {
  await sleep(100)
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const hold = (port: number) =>
  new Promise<() => void>((resolve) => {
    const child = spawn(process.execPath, [path.join(here, "loadgen.js"), "idle", "--port", String(port), "--conns", String(conns), "--hold", "60000"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.stdout!.on("data", (c: Buffer) => {
      if (c.toString().includes("connected")) resolve(() => child.kill("SIGKILL"))
    })
  })

const measure = async (name: string, start: (ready: (port: number) => void) => void) => {
  let port = 0
  await new Promise<void>((r) =>
    start((p) => {
      port = p
      r()
    })
  )
  const before = await heap()
  const release = await hold(port)
  await sleep(1500)
  const after = await heap()
  release()
  await sleep(300)
  console.log(`| ${name} | ${((after - before) / conns / 1024).toFixed(1)} |`)
}

// Connections end with PeerClosed when the load generator leaves: ignored, so
// the platform server does not log each as a failed handler.
const effectServer = <E, R>(
  handler: (socket: Socket.Socket) => Effect.Effect<unknown, E, R>,
  provide: Layer.Layer<R>,
  socketServer: Layer.Layer<SocketServer.SocketServer, unknown> = NodeSocketServer.layer({ host: "127.0.0.1", port: 0, backlog: 4096 })
) => (ready: (port: number) => void) =>
  void Effect.runFork(
    Effect.gen(function*() {
      const server = yield* SocketServer.SocketServer
      ready((server.address as SocketServer.TcpAddress).port)
      yield* server.run(handler)
    }).pipe(
      Effect.provide(Layer.merge(socketServer, provide)),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  )

const main = async () => {
  console.log(`# Heap per idle connection, by layer (${conns} connections)\n`)
  console.log("| server | heap KiB / conn |")
  console.log("|---|---|")
  await measure("raw node:net, no heartbeat", (ready) => {
    const server = net.createServer((s) => s.on("error", () => {}))
    server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => ready((server.address() as net.AddressInfo).port))
  })
  await measure("NodeSocketServer, handler never runs the socket", effectServer(() => Effect.never, Layer.empty))
  await measure("+ socket.run(void handler)", effectServer((socket) => socket.run(() => {}), Layer.empty))
  const framing = Frame.lengthPrefixed()
  await measure(
    "+ Tether Connection (reader, writer), no heartbeat",
    effectServer((socket) =>
      Effect.flatMap(Connection.make(socket, { framing, codec: Codec.bytes }), (c) => Effect.ignore(c.run(() => Effect.void))), Layer.empty)
  )
  await measure(
    "+ heartbeat fiber (ping 1 s / 3 s)",
    effectServer((socket) =>
      Effect.flatMap(
        Connection.make(socket, {
          framing,
          codec: Codec.bytes,
          dialect: Heartbeat.bytes,
          heartbeat: { ...Heartbeat.ping({ interval: "1 second", timeout: "3 seconds" }), answers: false }
        }),
        (c) => Effect.ignore(c.run(() => Effect.void))
      ), Layer.empty)
  )
  const tetherServer = NodeTether.layerServer({ port: 0, backlog: 4096 })
  await measure(
    "NodeTether.layerServer (node:net transport), handler never runs the socket",
    effectServer(() => Effect.never, Layer.empty, tetherServer)
  )
  await measure(
    "+ Tether Connection over the transport, no heartbeat",
    effectServer((socket) =>
      Effect.flatMap(Connection.make(socket, { framing, codec: Codec.bytes }), (c) => Effect.ignore(c.run(() => Effect.void))), Layer.empty, tetherServer)
  )
  await measure("Server as tether-server runs it (transport, shared heartbeat scheduler)", (ready) =>
    void Effect.runFork(
      Effect.gen(function*() {
        const server = yield* Server.make<Uint8Array>({
          framing,
          codec: Codec.bytes,
          dialect: Heartbeat.bytes,
          heartbeat: { ...Heartbeat.ping({ interval: "1 second", timeout: "3 seconds" }), answers: false },
          handler: () => undefined
        })
        ready((server.address as SocketServer.TcpAddress).port)
        yield* Effect.never
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.merge(NodeTether.layerServer({ port: 0, backlog: 4096 }), Server.Authenticator.layerAnyone)),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    ))
  process.exit(0)
}

void main()
