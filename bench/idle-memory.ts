/**
 * Memory per idle heartbeated connection: heap (in-process, after GC) and RSS
 * (server in its own process), Tether's echo server beside the raw node:net
 * echo server, both pinging every second with a 3 s timeout. Bounded: each
 * scenario holds its connections for a few seconds.
 *
 *   node --expose-gc bench/build/idle-memory.js [--conns 2000] [--hold 4000]
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startInProcess } from "./inProcessServer.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const conns = arg("conns", 2000)
const hold = arg("hold", 4000)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {
  throw new Error("run with node --expose-gc")
})

const lines = (child: ChildProcess, onLine: (line: string) => void) => {
  let buffered = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    let at: number
    while ((at = buffered.indexOf("\n")) !== -1) {
      onLine(buffered.slice(0, at))
      buffered = buffered.slice(at + 1)
    }
  })
}

/** Runs the idle load generator; resolves when all are connected, and when it reports. */
const idleLoad = (port: number) => {
  const child = spawn(process.execPath, [path.join(here, "loadgen.js"), "idle", "--port", String(port), "--conns", String(conns), "--hold", String(hold)], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  let onConnected: () => void = () => {}
  const connected = new Promise<void>((r) => (onConnected = r))
  const report = new Promise<{ alive: number }>((resolve) =>
    lines(child, (line) => {
      const event = JSON.parse(line)
      if (event.event === "connected") onConnected()
      else resolve(event)
    })
  )
  return { connected, report, child }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const heapNow = async () => {
  await sleep(50)
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const rssOf = (pid: number) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

/** In-process heap: start a server, hold `conns` idle connections, measure heap growth per connection. */
const heapPerConnection = async (startServer: () => Promise<{ port: number; stop: () => Promise<void> }>) => {
  const { port, stop } = await startServer()
  const before = await heapNow()
  const load = idleLoad(port)
  await load.connected
  await sleep(Math.min(2000, hold / 2))
  const during = await heapNow()
  const { alive } = await load.report
  await stop()
  return { perConnection: (during - before) / conns, alive }
}

const tetherInProcess = () => startInProcess((session, frame) => Effect.ignore(session.connection.send(frame)))

const rawInProcess = async () => {
  const net = await import("node:net")
  const peers = new Set<{ socket: import("node:net").Socket; last: number }>()
  const PING = Buffer.from([0, 0, 0, 4, 0x50, 0x49, 0x4e, 0x47])
  const server = net.createServer({ noDelay: true }, (socket) => {
    const peer = { socket, last: Date.now() }
    peers.add(peer)
    socket.on("data", (chunk: Buffer) => {
      peer.last = Date.now()
      if (chunk.length !== 8) socket.write(chunk)
    })
    socket.on("error", () => {})
    socket.on("close", () => peers.delete(peer))
  })
  const timer = setInterval(() => {
    const now = Date.now()
    for (const p of peers) now - p.last > 3000 ? p.socket.destroy() : p.socket.write(PING)
  }, 1000)
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => r()))
  return {
    port: (server.address() as import("node:net").AddressInfo).port,
    stop: async () => {
      clearInterval(timer)
      for (const p of peers) p.socket.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  }
}

/** RSS of a server in its own process. */
const rssPerConnection = async (argv: Array<string>) => {
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] })
  const port = await new Promise<number>((resolve) =>
    lines(child, (line) => {
      const m = /listening on [\d.]+:(\d+)/.exec(line)
      if (m) resolve(Number(m[1]))
    })
  )
  await sleep(300)
  const before = rssOf(child.pid!)
  const load = idleLoad(port)
  await load.connected
  await sleep(Math.min(2000, hold / 2))
  const during = rssOf(child.pid!)
  const { alive } = await load.report
  child.kill("SIGKILL")
  return { perConnection: (during - before) / conns, alive }
}

const main = async () => {
  const root = path.resolve(here, "../..")
  const rawHeap = await heapPerConnection(rawInProcess)
  const tetherHeap = await heapPerConnection(tetherInProcess)
  const rawRss = await rssPerConnection([path.join(here, "raw-echo-server.js"), "--heartbeat-interval", "1000", "--heartbeat-timeout", "3000"])
  const tetherRss = await rssPerConnection([
    path.join(root, "apps/server/bin/tether-server"), "--mode", "echo", "--port", "0",
    "--heartbeat-interval", "1s", "--heartbeat-timeout", "3s", "--log-level", "info"
  ])
  const kib = (n: number) => (n / 1024).toFixed(1)
  console.log(`# Idle heartbeated connections (${conns}, ping 1 s, timeout 3 s)\n`)
  console.log("| server | heap / conn (KiB) | RSS / conn (KiB) | alive after hold | heap ratio | RSS ratio |")
  console.log("|---|---|---|---|---|---|")
  console.log(`| raw node:net | ${kib(rawHeap.perConnection)} | ${kib(rawRss.perConnection)} | ${rawRss.alive}/${conns} | 1.00 | 1.00 |`)
  console.log(
    `| tether echo | ${kib(tetherHeap.perConnection)} | ${kib(tetherRss.perConnection)} | ${tetherRss.alive}/${conns} | ${
      (tetherHeap.perConnection / rawHeap.perConnection).toFixed(2)
    } | ${(tetherRss.perConnection / rawRss.perConnection).toFixed(2)} |`
  )
  process.exit(0)
}

void main()
