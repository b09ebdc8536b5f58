/**
 * Soak scenarios for hostile peers (npm run soak): long or large, so not in
 * `npm test`. Loopback only; every loop is bounded in count and time; the
 * server is a child process (its RSS is read from /proc) except for the
 * reconnect storm, which counts accepts in-process.
 *
 *   1. 1,000 slowloris peers (half a header, or never a login) at once while
 *      good clients chat: all closed by the deadlines, good clients served.
 *   2. 1,000 frame bombs (4 GiB declared length): refused, RSS does not move.
 *   3. Slow readers: 20 peers that never read while a talker broadcasts 16 KiB
 *      lines: each cut off as a slow consumer, RSS bounded.
 *   4. Reconnect storm: 1,000 clients lose the server for 3 s; peak accepts per
 *      100 ms with the default jittered schedule; all back within its bound.
 */
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const serverBin = path.join(root, "apps/server/bin/tether-server")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const json = Codec.json(Message.Message)
const frameOf = (m: Message.Message) => Buffer.from(Frame.lengthPrefixed().encode(json.encode(m) as Uint8Array) as Uint8Array)
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const results: Array<string> = []

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024

const startServer = async (args: Array<string>) => {
  const child = spawn(process.execPath, [serverBin, "--port", "0", "--log-level", "info", ...args], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    setTimeout(() => reject(new Error("server did not start")), 10_000)
  })
  return { child, port, log: () => out }
}

const stop = async (child: ChildProcess) => {
  child.kill("SIGTERM")
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(15_000)])
  if (child.exitCode === null) child.kill("SIGKILL")
}

interface Peer {
  socket: net.Socket
  closedAt: number | undefined
}
const openPeer = (port: number): Promise<Peer> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const peer: Peer = { socket, closedAt: undefined }
    socket.on("data", () => {})
    socket.on("error", () => {})
    socket.on("close", () => (peer.closedAt = Date.now()))
    socket.once("connect", () => resolve(peer))
    socket.once("error", reject)
  })
const openPeers = async (port: number, count: number) => {
  const peers: Array<Peer> = []
  for (let i = 0; i < count; i += 100) peers.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => openPeer(port)))))
  return peers
}

const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)

const chatClient = (port: number, user: string, onSaid: () => void = () => {}) =>
  Client.make({
    connect: NodeTether.connect({ port, connectTimeout: "3 seconds" }),
    framing: Frame.lengthPrefixed(),
    codec: json,
    dialect: TetherProtocol.dialect,
    login: TetherProtocol.clientLogin(user, "pw"),
    correlate: TetherProtocol.correlate,
    reconnect: false,
    onMessage: (m) => Effect.sync(() => m._tag === "Said" && onSaid())
  })

const slowloris = async () => {
  const { child, port } = await startServer(["--login-timeout", "2s", "--heartbeat-interval", "1s", "--heartbeat-timeout", "3s"])
  const rssBefore = rssOf(child.pid!)
  const started = Date.now()
  const peers = await openPeers(port, 1000)
  peers.forEach((p, i) => i % 2 === 0 && p.socket.write(Buffer.from([0, 0])))
  // Good clients chat meanwhile: every say must be acknowledged.
  const goodLatencies = await Effect.runPromise(Effect.gen(function*() {
    const a = yield* chatClient(port, "good-a")
    const b = yield* chatClient(port, "good-b")
    yield* a.awaitConnected
    yield* b.awaitConnected
    const latencies: Array<number> = []
    for (let i = 0; i < 50; i++) {
      const t0 = Date.now()
      yield* TetherProtocol.say(i % 2 ? a : b, `line ${i}`, { timeout: "2 seconds" })
      latencies.push(Date.now() - t0)
      yield* Effect.sleep("40 millis")
    }
    return latencies
  }).pipe(Effect.scoped, quiet))
  const until = Date.now() + 10_000
  while (peers.some((p) => p.closedAt === undefined) && Date.now() < until) await sleep(50)
  const closed = peers.filter((p) => p.closedAt !== undefined)
  const times = closed.map((p) => p.closedAt! - started).sort((a, b) => a - b)
  const rssPeak = rssOf(child.pid!)
  await stop(child)
  results.push(
    `| slowloris | 1,000 peers (half a header / no login), login timeout 2 s | ${closed.length}/1000 closed, after ${times[0]}..${times.at(-1)} ms; 2 good clients: 50/50 lines acknowledged, max ${Math.max(...goodLatencies)} ms | RSS ${mib(rssBefore)} -> ${mib(rssPeak)} |`
  )
}

const frameBombs = async () => {
  const { child, port } = await startServer(["--heartbeat", "off"])
  await sleep(200)
  const rssBefore = rssOf(child.pid!)
  const peers = await openPeers(port, 1000)
  const t0 = Date.now()
  for (const p of peers) p.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]))
  const until = Date.now() + 10_000
  while (peers.some((p) => p.closedAt === undefined) && Date.now() < until) await sleep(20)
  const closed = peers.filter((p) => p.closedAt !== undefined)
  const slowest = Math.max(...closed.map((p) => p.closedAt! - t0))
  const rssAfter = rssOf(child.pid!)
  await stop(child)
  results.push(
    `| frame bombs | 1,000 connections each declaring 4 GiB | ${closed.length}/1000 refused, all within ${slowest} ms of sending | RSS ${mib(rssBefore)} -> ${mib(rssAfter)} (${((rssAfter - rssBefore) / 1024 / 1000).toFixed(0)} KiB per connection opened: none of the declared bytes) |`
  )
}

const slowReaders = async () => {
  const { child, log, port } = await startServer(["--heartbeat", "off"])
  const rssBefore = rssOf(child.pid!)
  const readers = await openPeers(port, 20)
  readers.forEach((p, i) => {
    p.socket.write(frameOf({ _tag: "Login", user: `slow${i}`, password: "pw" }))
    p.socket.pause()
  })
  let rssPeak = rssBefore
  const said = await Effect.runPromise(Effect.gen(function*() {
    const talker = yield* chatClient(port, "talker")
    yield* talker.awaitConnected
    const text = "x".repeat(16 * 1024)
    let count = 0
    for (; count < 4000; count++) {
      yield* TetherProtocol.say(talker, text, { timeout: "3 seconds" })
      if (count % 100 === 0) rssPeak = Math.max(rssPeak, rssOf(child.pid!))
    }
    return count
  }).pipe(Effect.scoped, quiet))
  await sleep(500)
  rssPeak = Math.max(rssPeak, rssOf(child.pid!))
  const cutOff = (log().match(/connection closed: slow consumer/g) ?? []).length
  await stop(child)
  results.push(
    `| slow readers | 20 peers never read; a talker says ${said} lines of 16 KiB (${mib(said * 16 * 1024)} per peer) | all ${said} acknowledged to the talker; ${cutOff}/20 readers closed as slow consumers (queue capacity 1,024) | RSS ${mib(rssBefore)} -> peak ${mib(rssPeak)} |`
  )
}

const reconnectStorm = async () => {
  const clients = 1000
  const accepts: Array<number> = []
  let port = 0
  const serve = (listenPort: number) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Layer.merge(NodeTether.layerServer({ port: listenPort, backlog: 4096 }), Server.Authenticator.layerAnyone),
        scope
      )
      const server = yield* Server.make<Message.Message>({
        framing: Frame.lengthPrefixed(),
        codec: json,
        dialect: TetherProtocol.dialect,
        login: TetherProtocol.serverLogin,
        drainTimeout: "1 second",
        peerAddress: Effect.sync(() => {
          accepts.push(Date.now())
          return "storm"
        }),
        handler: () => Effect.void
      }).pipe(Scope.extend(scope), Effect.provide(context))
      port = (server.address as SocketServer.TcpAddress).port
      return { scope, server }
    })
  const outcome = await Effect.runPromise(Effect.gen(function*() {
    const first = yield* serve(0)
    const all = yield* Effect.forEach(Array.from({ length: clients }, (_, i) => i), (i) =>
      Client.make({
        connect: NodeTether.connect({ port, connectTimeout: "3 seconds" }),
        framing: Frame.lengthPrefixed(),
        codec: json,
        dialect: TetherProtocol.dialect,
        login: TetherProtocol.clientLogin(`c${i}`, "pw")
      }), { concurrency: 50 })
    yield* Effect.forEach(all, (c) => c.awaitConnected, { concurrency: "unbounded", discard: true })
    yield* Scope.close(first.scope, Exit.void)
    const downAt = Date.now()
    accepts.length = 0
    yield* Effect.sleep("3 seconds")
    const second = yield* serve(port)
    const upAt = Date.now()
    const until = Date.now() + 60_000
    while (second.server.registry.count() < clients && Date.now() < until) yield* Effect.sleep("50 millis")
    const back = second.server.registry.count()
    const allBackAfter = Date.now() - downAt
    const buckets = new Map<number, number>()
    for (const t of accepts) buckets.set(Math.floor((t - upAt) / 100), (buckets.get(Math.floor((t - upAt) / 100)) ?? 0) + 1)
    const peak = Math.max(...buckets.values())
    yield* Scope.close(second.scope, Exit.void)
    return { back, allBackAfter, peak, windows: buckets.size }
  }).pipe(Effect.scoped, quiet))
  results.push(
    `| reconnect storm | 1,000 clients, server down 3 s, default schedule (1 s x2, jittered, cap 32 s) | ${outcome.back}/1000 back within ${(outcome.allBackAfter / 1000).toFixed(1)} s of the loss (bound: 1+2+4 s x1.2 = 8.4 s) | peak ${outcome.peak} accepts per 100 ms, spread over ${outcome.windows} windows |`
  )
}

const main = async () => {
  const started = Date.now()
  for (const [name, scenario] of [["slowloris", slowloris], ["frame bombs", frameBombs], ["slow readers", slowReaders], ["reconnect storm", reconnectStorm]] as const) {
    process.stderr.write(`soak: ${name}...\n`)
    await scenario()
  }
  console.log(`# Soak: hostile peers (${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
  console.log("| scenario | load | outcome | memory / spread |")
  console.log("|---|---|---|---|")
  for (const r of results) console.log(r)
  process.exit(0)
}

// The whole soak stops by itself after 4 minutes at most.
setTimeout(() => {
  console.error("soak: time limit reached")
  process.exit(1)
}, 240_000).unref()
void main()
