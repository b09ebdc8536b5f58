/**
 * The hostile section of the soak (issue 15): can one client hurt the others?
 * Real `tether-server` processes on 127.0.0.1, every loop bounded in count
 * and time (~40 s in all). Run by `npm run soak` after `soak.js`.
 *
 *   1. Fairness: 2,000 logged-in users; a well-behaved client says a line
 *      every 20 ms and times each Ack, first quietly, then while one client
 *      floods Who and Say as fast as its socket takes them. Goal: the
 *      well-behaved p99 within 2x of the quiet figure.
 *   2. Log flood before login: peers that send 1 MiB Logins that fail their
 *      Schema, over and over. Goal: log bytes per hostile byte bounded (well
 *      under 1%), server RSS flat.
 *   3. Idle flood against --max-connections 50: 300 peers connect and never
 *      log in, then 10 real users log in. Goal: all 10 admitted.
 */
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
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
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const results: Array<string> = []

const startServer = async (args: Array<string>) => {
  const child = spawn(process.execPath, ["--max-semi-space-size=1", serverBin, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] })
  let logBytes = 0
  let out = ""
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (c: Buffer) => {
      logBytes += c.length
      if (out.length < 4096) out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    setTimeout(() => reject(new Error("server did not start")), 15_000)
  })
  return { child, port, logBytes: () => logBytes }
}

const stop = async (child: ChildProcess) => {
  child.kill("SIGTERM")
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(15_000)])
  if (child.exitCode === null) child.kill("SIGKILL")
}

interface Peer {
  readonly socket: net.Socket
  readonly messages: Array<Message.Message>
  closed: boolean
}

const open = (port: number, login?: string): Promise<Peer> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const decoder = Frame.lengthPrefixed({ maxFrameBytes: 16 * 1024 * 1024 }).decoder()
    const peer: Peer = { socket, messages: [], closed: false }
    socket.on("data", (chunk) => {
      const frames = decoder.push(chunk)
      if (frames instanceof Error) return
      // Keep what a test reads; drop bulk (Present lists, Saids) to stay small.
      for (const f of frames) {
        const m = json.decode(f)
        if (!(m instanceof Error) && m._tag !== "Said" && m._tag !== "Present") peer.messages.push(m)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => (peer.closed = true))
    socket.once("connect", () => {
      if (login !== undefined) socket.write(frameOf({ _tag: "Login", user: login, password: "pw" }))
      resolve(peer)
    })
    socket.once("error", reject)
  })

const openMany = async (port: number, count: number, login?: (i: number) => string) => {
  const peers: Array<Peer> = []
  for (let i = 0; i < count; i += 100) {
    peers.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(port, login?.(i + j))))))
  }
  return peers
}

const percentile = (values: Array<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

/** Says a line every 20 ms for `ms`, returns each Ack's latency in ms. */
const measureAcks = async (peer: Peer, ms: number, firstId: number) => {
  const sent = new Map<number, number>()
  const latencies: Array<number> = []
  const seen = peer.messages.length
  let id = firstId
  const until = Date.now() + ms
  const onData = () => {
    for (const m of peer.messages.splice(seen)) {
      if (m._tag === "Ack" && sent.has(m.id)) {
        latencies.push(performance.now() - sent.get(m.id)!)
        sent.delete(m.id)
      }
    }
  }
  peer.socket.on("data", onData)
  while (Date.now() < until) {
    sent.set(id, performance.now())
    peer.socket.write(frameOf({ _tag: "Say", id, text: `line ${id}` }))
    id++
    await sleep(20)
  }
  await sleep(500)
  peer.socket.off("data", onData)
  return { latencies, lost: sent.size }
}

const fairness = async () => {
  const { child, port } = await startServer(["--log-level", "warning", "--max-pending-per-address", "100000"])
  const good = await open(port, "good")
  const crowd = await openMany(port, 2000, (i) => `user${i}`)
  // 2,000 logins tell every member of #lobby (O(n^2) Joined notices): wait until they are through.
  let received = 0
  good.socket.on("data", (chunk: Buffer) => (received += chunk.length))
  for (let last = -1, waited = 0; received !== last && waited < 60_000; waited += 1000) {
    last = received
    await sleep(1000)
  }
  if (process.env.HOSTILE_DEBUG) console.log("good:", good.closed, good.messages.slice(0, 5), good.messages.length, received)
  const quiet = await measureAcks(good, 5000, 1)
  const flooder = await open(port, "flooder")
  await sleep(200)
  let floodFrames = 0
  let flooding = true
  const batch = Buffer.concat([
    ...Array.from({ length: 50 }, () => frameOf({ _tag: "Who" })),
    ...Array.from({ length: 50 }, (_, i) => frameOf({ _tag: "Say", id: 900_000 + i, text: "flood" }))
  ])
  const flood = (async () => {
    const until = Date.now() + 6000
    while (flooding && Date.now() < until && !flooder.closed) {
      if (flooder.socket.write(batch)) floodFrames += 100
      else await new Promise((r) => flooder.socket.once("drain", r))
      await sleep(0)
    }
  })()
  const loud = await measureAcks(good, 5000, 100_000)
  flooding = false
  await flood
  const refused = flooder.messages.filter((m) => m._tag === "SayRefused" || m._tag === "Failure").length
  const rss = rssOf(child.pid!)
  for (const p of [...crowd, good, flooder]) p.socket.destroy()
  await stop(child)
  const q99 = percentile(quiet.latencies, 99)
  const l99 = percentile(loud.latencies, 99)
  results.push(
    `| fairness: Who + Say flood vs a well-behaved client (2,000 users online) | ${floodFrames.toLocaleString()} flood frames in 5 s, ${refused.toLocaleString()} refused RateLimited | Ack p50 ${percentile(quiet.latencies, 50).toFixed(2)} -> ${percentile(loud.latencies, 50).toFixed(2)} ms, p99 ${q99.toFixed(2)} -> ${l99.toFixed(2)} ms (${(l99 / q99).toFixed(2)}x; goal <= 2x), ${quiet.lost + loud.lost} unacknowledged | server RSS ${mib(rss)} |`
  )
}

const logFlood = async () => {
  const { child, port, logBytes } = await startServer(["--log-level", "info", "--max-frame-bytes", String(2 * 1024 * 1024)])
  await sleep(500)
  const rssBefore = rssOf(child.pid!)
  const logBefore = logBytes()
  // Built by hand: the codec refuses to encode what the Schema refuses.
  const bad = Buffer.from(Frame.lengthPrefixed({ maxFrameBytes: 4 * 1024 * 1024 }).encode(
    new TextEncoder().encode(JSON.stringify({ _tag: "Login", user: "x".repeat(1024 * 1024), password: "pw" }))
  ) as Uint8Array)
  let hostile = 0
  const until = Date.now() + 8000
  for (let round = 0; round < 40 && Date.now() < until; round++) {
    const peers = await openMany(port, 4)
    for (const p of peers) {
      p.socket.write(bad)
      hostile += bad.length
    }
    await sleep(100)
    for (const p of peers) p.socket.destroy()
  }
  await sleep(1000)
  const rssAfter = rssOf(child.pid!)
  const logged = logBytes() - logBefore
  await stop(child)
  results.push(
    `| log flood before login: 1 MiB Logins failing their Schema | ${mib(hostile)} hostile bytes from 160 connections | ${logged.toLocaleString()} log bytes (${((logged / hostile) * 100).toFixed(3)}% of hostile bytes) | RSS ${mib(rssBefore)} -> ${mib(rssAfter)} |`
  )
}

const idleFlood = async () => {
  const { child, port } = await startServer(["--log-level", "warning", "--max-connections", "50", "--login-timeout", "10s"])
  const idle = await openMany(port, 300)
  await sleep(500)
  const users = await Promise.all(Array.from({ length: 10 }, (_, i) => open(port, `real${i}`)))
  await sleep(1500)
  const admitted = users.filter((u) => u.messages.some((m) => m._tag === "LoginResult" && m.status === 0)).length
  const idleLeft = idle.filter((p) => !p.closed).length
  for (const p of [...idle, ...users]) p.socket.destroy()
  await stop(child)
  results.push(
    `| idle flood against --max-connections 50 (max pending 25) | 300 peers that never log in, then 10 real users | ${admitted} of 10 real users admitted (goal 10) | ${idleLeft} idle peers still open |`
  )
}

const main = async () => {
  const started = Date.now()
  for (const scenario of [fairness, logFlood, idleFlood]) {
    try {
      await scenario()
    } catch (error) {
      results.push(`| ${scenario.name} | failed | ${String(error)} | |`)
    }
  }
  console.log(`\n# Soak: hostile clients (${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
  console.log("| scenario | load | outcome | memory |")
  console.log("|---|---|---|---|")
  for (const r of results) console.log(r)
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
