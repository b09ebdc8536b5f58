/**
 * Cluster mode end to end, through real tether-server processes: a line's
 * delivery latency (p50 / p99) on one in-memory node (the baseline), and on a
 * two-node `--redis` cluster to a member on the sender's node and to one on
 * the other node; lines per second through each; and the servers' CPU
 * (user + system from /proc) per delivered line, with and without Redis.
 * `redis-benchmark` of the commands the path uses (EVALSHA of the publish
 * script, PUBLISH) is the ceiling. Clients are raw TCP in this process.
 * Bounded: fixed counts, each phase capped in time. Uses `REDIS_URL`
 * (default redis://127.0.0.1:6379) under a key prefix of its own, deleted at
 * the end (and by the nodes' graceful stop).
 *
 *   npx tsc -b && node bench/build/cluster.js
 *
 * BENCH_ROUNDS (3), BENCH_LATENCY_LINES (5,000 a round), BENCH_CEILING=0 (no
 * redis-benchmark; npm run bench's cluster rows); BENCH_NODE_FLAGS and
 * BENCH_LOG_DIR as in servers.ts (e.g. "--trace-gc" or "--cpu-prof --cpu-prof-dir=DIR").
 */
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as LocalRedis from "@tether/testing/LocalRedis"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { createWriteStream, readFileSync } from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { publishArgs, redisBenchmark } from "./redisCeiling.js"
import { logDir, nodeFlags } from "./servers.js"
import * as Effect from "effect/Effect"

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const prefix = `bench:${randomBytes(4).toString("hex")}:`
const here = path.dirname(fileURLToPath(import.meta.url))
const serverBin = path.resolve(here, "../../apps/server/bin/tether-server")
const rawRelay = path.resolve(here, "raw-relay.js")
const latencyLines = Number(process.env["BENCH_LATENCY_LINES"] ?? 5_000)
/**
 * Lines said through each set-up before the first round and not counted: five
 * servers starting at once compile in the background for seconds (the first
 * counted round after a 1,000-line warm-up still had 2-3x the p99 of the next
 * ones, the raw relay's too).
 */
const warmupLines = 3_000
const throughputLines = 20_000
const inFlight = 64
const phaseCap = 8_000
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3)
const ticks = 100 // USER_HZ: /proc/PID/stat times are in 1/100 s

// -- processes ---------------------------------------------------------------

const children = new Set<ChildProcess>()
// One sender says every line of the bench: the per-session rate limit (50/s by default) would refuse most.
const unlimited = ["--rate-messages", "10000000", "--rate-bytes", String(2 ** 30)]
const startServer = (args: ReadonlyArray<string>, raw = false) =>
  new Promise<{ readonly child: ChildProcess; readonly port: number }>((resolve, reject) => {
    const argv = raw ? [rawRelay, ...args] : [serverBin, "--port", "0", "--log-level", "warning", "--heartbeat", "off", ...unlimited, ...args]
    const child = spawn(process.execPath, [...nodeFlags, ...argv], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    const log = logDir !== undefined ? createWriteStream(path.join(logDir, `${raw ? "raw-" : ""}${args.includes("--redis") ? "cluster" : "single"}-${child.pid}.log`)) : undefined
    let output = ""
    const onData = (chunk: Buffer) => {
      log?.write(chunk)
      if (output.length > 10_000) return
      output += chunk.toString()
      const match = output.match(/listening on [\d.]+:(\d+)/)
      if (match) resolve({ child, port: Number(match[1]) })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`server exited (${code}): ${output}`)))
    setTimeout(() => reject(new Error(`server did not start: ${output}`)), 20_000).unref()
  })
const stopAll = async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.pid === undefined) continue
    const exited = new Promise((resolve) => child.once("exit", resolve))
    process.kill(child.pid, "SIGTERM")
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))])
    if (child.exitCode === null) process.kill(child.pid, "SIGKILL")
  }
  children.clear()
}
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / ticks // utime, stime (fields 14, 15)
}

// -- a raw chat client -------------------------------------------------------

interface Peer {
  readonly send: (message: object) => void
  onMessage: (message: any) => void
  readonly close: () => void
}
const connect = (port: number, user: string) =>
  new Promise<Peer>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.setNoDelay(true)
    let buffer: Buffer = Buffer.alloc(0)
    const peer: Peer = {
      send: (message) => {
        const body = Buffer.from(JSON.stringify(message))
        const head = Buffer.alloc(4)
        head.writeUInt32BE(body.length)
        socket.write(Buffer.concat([head, body]))
      },
      onMessage: () => undefined,
      close: () => socket.destroy()
    }
    socket.on("data", (chunk) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      let at = 0
      while (buffer.length - at >= 4) {
        const size = buffer.readUInt32BE(at)
        if (buffer.length - at < 4 + size) break
        peer.onMessage(JSON.parse(buffer.subarray(at + 4, at + 4 + size).toString()))
        at += 4 + size
      }
      buffer = buffer.subarray(at)
    })
    socket.once("error", reject)
    socket.once("connect", async () => {
      const joined = new Promise<void>((done) => {
        peer.onMessage = (m) => {
          if (m._tag === "RoomJoined" && m.room === "#bench") done()
        }
      })
      peer.send({ _tag: "Login", user, password: "pw" })
      peer.send({ _tag: "Join", room: "#bench" })
      await joined
      peer.onMessage = () => undefined
      resolve(peer)
    })
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const us = (ms: number) => `${(ms * 1000).toFixed(0)} us`
interface Stats {
  readonly p50: number
  readonly p99: number
  readonly p90: number
  readonly p999: number
  readonly max: number
  readonly n: number
}
const stats = (samples: Array<number>): Stats => {
  const sorted = samples.sort((a, b) => a - b)
  return { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), p999: percentile(sorted, 0.999), max: sorted[sorted.length - 1]!, n: sorted.length }
}

/** One line at a time from `sender`; the time until each receiver has it. */
const latency = async (sender: Peer, receivers: ReadonlyArray<Peer>, base: number, count = latencyLines) => {
  const samples = receivers.map(() => [] as Array<number>)
  const start = performance.now()
  for (let i = 1; i <= count && performance.now() - start < phaseCap; i++) {
    const sent = performance.now()
    const id = base + i
    const text = `l${id}`
    await Promise.all(receivers.map((peer, r) =>
      new Promise<void>((done) => {
        peer.onMessage = (m) => {
          if (m._tag === "Said" && m.text === text) {
            samples[r]!.push(performance.now() - sent)
            done()
          }
        }
      })
    ).concat([new Promise<void>((done, refused) => {
      sender.onMessage = (m) => {
        if (m._tag === "Ack" && m.id === id) done()
        if (m._tag === "SayRefused") refused(new Error(`line ${id} refused: ${JSON.stringify(m)}`))
      }
      sender.send({ _tag: "Say", id, text, room: "#bench" })
    })]))
  }
  for (const peer of [sender, ...receivers]) peer.onMessage = () => undefined
  return samples
}

/**
 * `count` lines through each set-up, in blocks of `block` taken in turn (A,
 * B, C, A, B, C, ...): a slow moment of the machine falls on every set-up
 * alike instead of on whichever ran then. Samples per set-up, per receiver.
 */
const interleaved = async (
  setups: ReadonlyArray<{ readonly sender: Peer; readonly receivers: ReadonlyArray<Peer> }>,
  count: number,
  base: number,
  block = 250
) => {
  const all = setups.map((setup) => setup.receivers.map(() => [] as Array<number>))
  for (let done = 0; done < count; done += block) {
    for (const [i, setup] of setups.entries()) {
      const samples = await latency(setup.sender, setup.receivers, base + done, Math.min(block, count - done))
      for (const [r, some] of samples.entries()) all[i]![r]!.push(...some)
    }
  }
  return all
}

/** `inFlight` lines unacknowledged at a time; counts every Said delivered to every member. */
const throughput = async (sender: Peer, receivers: ReadonlyArray<Peer>, pids: ReadonlyArray<number>, base: number) => {
  let delivered = 0
  let acked = 0
  let sent = 0
  const cpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
  const start = performance.now()
  const members = [sender, ...receivers]
  const saidAll = new Promise<void>((done) => {
    const count = (m: any) => {
      if (m._tag === "Said") {
        delivered++
        if (delivered === sent * members.length && sent > 0 && (sent === throughputLines || performance.now() - start > phaseCap)) done()
      }
    }
    for (const peer of receivers) peer.onMessage = count
    const next = () => {
      if (sent >= throughputLines || performance.now() - start > phaseCap) return
      sent++
      sender.send({ _tag: "Say", id: base + sent, text: "x".repeat(64), room: "#bench" })
    }
    sender.onMessage = (m) => {
      count(m)
      if (m._tag === "Ack") {
        acked++
        next()
      } else if (m._tag === "SayRefused") next()
    }
    for (let i = 0; i < inFlight; i++) next()
  })
  await Promise.race([saidAll, new Promise((r) => setTimeout(r, phaseCap * 2))])
  const seconds = (performance.now() - start) / 1000
  const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpu0
  for (const peer of members) peer.onMessage = () => undefined
  return { lines: acked / seconds, deliveries: delivered, cpuPerDelivery: cpu / delivered, cpu, seconds }
}

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const main = async () => {
  const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
  console.log(`cluster bench, ${new Date().toISOString()}, node ${process.version}, load average ${loadAverage()}, ${rounds} rounds`)
  const progress = (what: string) => process.stderr.write(`  [${new Date().toISOString().slice(11, 19)}] ${what}\n`)

  // Both set-ups run side by side; each round measures one then the other, back to back.
  progress("starting one in-memory node and two nodes on Redis")
  const single = await startServer([])
  const a = await startServer(["--redis", url, "--redis-prefix", prefix, "--node-id", "bench-a"])
  const b = await startServer(["--redis", url, "--redis-prefix", prefix, "--node-id", "bench-b"])
  const s = await Promise.all([connect(single.port, "s0"), connect(single.port, "s1"), connect(single.port, "s2")])
  const c = await Promise.all([connect(a.port, "c0"), connect(a.port, "c1"), connect(b.port, "c2")])
  // The baseline: the same shapes through a hand-written relay (bench/raw-relay.ts).
  const rawSingle = await startServer([], true)
  const rawA = await startServer(["--redis", url, "--prefix", `${prefix}raw:`, "--node-id", "raw-a"], true)
  const rawB = await startServer(["--redis", url, "--prefix", `${prefix}raw:`, "--node-id", "raw-b"], true)
  const rs = await Promise.all([connect(rawSingle.port, "r0"), connect(rawSingle.port, "r1")])
  const rc = await Promise.all([connect(rawA.port, "q0"), connect(rawA.port, "q1"), connect(rawB.port, "q2")])

  type Throughput = Awaited<ReturnType<typeof throughput>>
  const rows: Array<{ one: Stats; same: Stats; cross: Stats; rawOne: Stats; rawSame: Stats; rawCross: Stats; t1: Throughput; t2: Throughput; load: string }> = []
  const setups = [
    { sender: s[0]!, receivers: [s[1]!] },
    { sender: c[0]!, receivers: [c[1]!, c[2]!] },
    { sender: rs[0]!, receivers: [rs[1]!] },
    { sender: rc[0]!, receivers: [rc[1]!, rc[2]!] }
  ]
  progress(`warm-up: ${warmupLines} lines through each, not counted`)
  await interleaved(setups, warmupLines, 1)
  const pooled: Record<string, Array<number>> = {}
  for (let round = 0; round < rounds; round++) {
    const base = (round + 1) * 10_000_000
    progress(`round ${round + 1}: latency`)
    const [[oneSamples], [sameSamples, crossSamples], [rawOneSamples], [rawSameSamples, rawCrossSamples]] = await interleaved(setups, latencyLines, base)
    for (const [key, samples] of Object.entries({ one: oneSamples, same: sameSamples, cross: crossSamples, rawOne: rawOneSamples, rawSame: rawSameSamples, rawCross: rawCrossSamples })) {
      pooled[key] = [...(pooled[key] ?? []), ...samples!]
    }
    const [one, same, cross, rawOne, rawSame, rawCross] = [oneSamples, sameSamples, crossSamples, rawOneSamples, rawSameSamples, rawCrossSamples].map((x) => stats([...x!]))
    progress(`round ${round + 1}: throughput`)
    const t1 = await throughput(s[0]!, [s[1]!, s[2]!], [single.child.pid!], base + 1_000_000)
    const t2 = await throughput(c[0]!, [c[1]!, c[2]!], [a.child.pid!, b.child.pid!], base + 1_000_000)
    rows.push({ one: one!, same: same!, cross: cross!, rawOne: rawOne!, rawSame: rawSame!, rawCross: rawCross!, t1, t2, load: loadAverage() })
  }
  for (const peer of [...s, ...c, ...rs, ...rc]) peer.close()
  await stopAll()

  console.log(`latency, one line at a time (${rows[0]!.one.n} lines per round), p50 / p99:`)
  console.log("  round | one node, memory | cluster, same node | cluster, cross node | cluster p99 - one node p99 | load")
  for (const [i, r] of rows.entries()) {
    const added = Math.max(r.same.p99, r.cross.p99) - r.one.p99
    console.log(`  ${i + 1}     | ${us(r.one.p50)} / ${us(r.one.p99)} | ${us(r.same.p50)} / ${us(r.same.p99)} | ${us(r.cross.p50)} / ${us(r.cross.p99)} | ${us(added)} | ${r.load}`)
    const tail = (x: Stats) => `${us(x.p90)} / ${us(x.p999)} / ${us(x.max)}`
    console.log(`        p90 / p99.9 / max: ${tail(r.one)} | ${tail(r.same)} | ${tail(r.cross)}`)
  }
  console.log("  the same through the raw relay (bench/raw-relay.ts), p50 / p99:")
  console.log("  round | raw, one process | raw on Redis, same node | raw on Redis, cross node | raw p99 added")
  for (const [i, r] of rows.entries()) {
    const added = Math.max(r.rawSame.p99, r.rawCross.p99) - r.rawOne.p99
    console.log(`  ${i + 1}     | ${us(r.rawOne.p50)} / ${us(r.rawOne.p99)} | ${us(r.rawSame.p50)} / ${us(r.rawSame.p99)} | ${us(r.rawCross.p50)} / ${us(r.rawCross.p99)} | ${us(added)}`)
  }
  console.log(`  raw: median p99 added ${us(median(rows.map((r) => Math.max(r.rawSame.p99, r.rawCross.p99) - r.rawOne.p99)))}, median p50 added ${us(median(rows.map((r) => Math.max(r.rawSame.p50, r.rawCross.p50) - r.rawOne.p50)))}`)
  const all = Object.fromEntries(Object.entries(pooled).map(([key, samples]) => [key, stats(samples)])) as Record<"one" | "same" | "cross" | "rawOne" | "rawSame" | "rawCross", Stats>
  const addedP99 = Math.max(all.same.p99, all.cross.p99) - all.one.p99
  const rawAddedP99 = Math.max(all.rawSame.p99, all.rawCross.p99) - all.rawOne.p99
  console.log(`  all rounds pooled (${all.one.n} lines each), p50 / p99: one node ${us(all.one.p50)} / ${us(all.one.p99)}, cluster same node ${us(all.same.p50)} / ${us(all.same.p99)}, cross node ${us(all.cross.p50)} / ${us(all.cross.p99)}`)
  console.log(`    raw: one process ${us(all.rawOne.p50)} / ${us(all.rawOne.p99)}, on Redis same node ${us(all.rawSame.p50)} / ${us(all.rawSame.p99)}, cross node ${us(all.rawCross.p50)} / ${us(all.rawCross.p99)}`)
  console.log(`    p99 added by Redis: Tether ${us(addedP99)} (goal < 500 us), the raw relay ${us(rawAddedP99)}; p50 added: Tether ${us(Math.max(all.same.p50, all.cross.p50) - all.one.p50)}, raw ${us(Math.max(all.rawSame.p50, all.rawCross.p50) - all.rawOne.p50)}`)
  console.log(`  median p99 added: ${us(median(rows.map((r) => Math.max(r.same.p99, r.cross.p99) - r.one.p99)))}, median p50 added: ${us(median(rows.map((r) => Math.max(r.same.p50, r.cross.p50) - r.one.p50)))} (goal: p99 < 500 us)`)
  console.log(`throughput (${inFlight} lines in flight, 64 B text, 3 members), lines/s acked and server CPU per delivered line:`)
  console.log("  round | one node, memory | two nodes on Redis | CPU ratio cluster / one node")
  for (const [i, r] of rows.entries()) {
    console.log(`  ${i + 1}     | ${r.t1.lines.toFixed(0)}/s, ${us(r.t1.cpuPerDelivery * 1000)} | ${r.t2.lines.toFixed(0)}/s, ${us(r.t2.cpuPerDelivery * 1000)} | ${(r.t2.cpuPerDelivery / r.t1.cpuPerDelivery).toFixed(2)}`)
  }
  console.log(`  median CPU ratio: ${median(rows.map((r) => r.t2.cpuPerDelivery / r.t1.cpuPerDelivery)).toFixed(2)} (goal <= 2)`)
  // For bench/run.ts (npm run bench): the figures of its table's cluster rows, on one line.
  console.log(`BENCH_JSON ${JSON.stringify({
    rounds,
    lines: all.one.n,
    one: all.one, same: all.same, cross: all.cross, rawOne: all.rawOne, rawSame: all.rawSame, rawCross: all.rawCross,
    addedP99: addedP99 * 1000,
    rawAddedP99: rawAddedP99 * 1000,
    medianRoundAddedP99: median(rows.map((r) => Math.max(r.same.p99, r.cross.p99) - r.one.p99)) * 1000,
    cpuOne: median(rows.map((r) => r.t1.cpuPerDelivery)) * 1e6,
    cpuCluster: median(rows.map((r) => r.t2.cpuPerDelivery)) * 1e6,
    cpuRatio: median(rows.map((r) => r.t2.cpuPerDelivery / r.t1.cpuPerDelivery)),
    linesOne: median(rows.map((r) => r.t1.lines)),
    linesCluster: median(rows.map((r) => r.t2.lines))
  })}`)
  if (process.env["BENCH_CEILING"] === "0") return Effect.runPromise(LocalRedis.cleanup(prefix, url))

  // The ceiling: Redis itself for the commands of the path.
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const redis = yield* Redis.make({ url })
    const keys = RedisHistory.keys(`${prefix}rb:`, "room")
    const sha = (yield* redis.command(["SCRIPT", "LOAD", RedisHistory.scripts.publish.lua])) as string
    const payload = "x".repeat(160)
    const bench = redisBenchmark(url, 30_000)
    console.log("redis-benchmark (50 clients, no pipelining), the ceiling:")
    console.log(`  EVALSHA publish script: ${bench(publishArgs(sha, keys, 1, payload))}`)
    console.log(`  EVALSHA, 16 lines a call (x16 for lines/s): ${bench(publishArgs(sha, keys, 16, payload))}`)
    console.log(`  PUBLISH:                ${bench(["PUBLISH", keys.channel, payload])}`)
    // One client, one command at a time: the round trip that the cluster path adds (twice: EVALSHA, then pub/sub).
    const { port, hostname } = new URL(url)
    const summary = execFileSync("redis-benchmark", ["-h", hostname, "-p", port || "6379", "-n", "20000", "-c", "1", "PING"], {
      encoding: "utf8",
      timeout: 30_000
    })
    const values = summary.split("\n").map((l) => l.trim()).filter((l) => /^[\d.]+(\s+[\d.]+){5}$/.test(l)).pop()?.split(/\s+/)
    if (values !== undefined) console.log(`  PING round trip, one client: p50 ${values[2]} ms, p99 ${values[4]} ms, max ${values[5]} ms`)
    yield* LocalRedis.cleanup(prefix, url)
  })))
}

main().then(
  () => process.exit(0),
  async (error) => {
    console.error(error)
    await stopAll()
    process.exit(1)
  }
)
