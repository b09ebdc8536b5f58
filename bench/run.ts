/**
 * The benchmark (npm run bench): each server started fresh per scenario on a
 * free port, one process, pinned to CPU 0 with the load generator on CPU 1
 * (taskset), figures reported beside the raw node:net baseline of the same
 * run as ratios, medians of RUNS runs interleaved server by server (raw,
 * tether, raw, tether, ...); the cluster rows from bench/cluster.ts (on
 * REDIS_URL). Bounded to about 7 minutes. Writes the
 * table to stdout (and to bench/RESULTS.md with --write).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import {
  cpuOf,
  hasTaskset,
  hasVariant,
  load,
  rssOf,
  type ServerKind,
  startServer,
  stopServer
} from "./servers.js"
import { interleavedSamples, RUNS, type Sample, type Spec } from "./measure.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../..")
// The bytes echo throughput figures swing by up to +-20% from one 2 s run to
// the next for either server (closed loop: how many frames a read carries
// is timing): more runs for their medians.
const THROUGHPUT_RUNS = Math.max(RUNS, Number(process.env.BENCH_THROUGHPUT_RUNS ?? 7))
const quick = process.argv.includes("--quick")

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// BENCH_ONLY=echo64,typed runs a subset (for profiling work; "throughput" is
// both echo scenarios); the default runs all.
const only = process.env.BENCH_ONLY?.split(",")
const want = (name: string) =>
  only === undefined || only.includes(name) || (only.includes("throughput") && name.startsWith("echo"))

const rows: Array<Array<string>> = []
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const report = (
  figure: string,
  unit: string,
  baseline: number,
  tether: number,
  goal: string,
  better: "higher" | "lower",
  extra = "",
  digits?: number
) => {
  const ratio = tether / baseline
  const shown = (n: number) => fmt(n, digits ?? (n < 100 ? 1 : 0))
  rows.push([figure, `${shown(baseline)} ${unit}`, `${shown(tether)} ${unit}`, ratio.toFixed(2), goal, extra])
  console.error(`bench: ${figure}: baseline ${baseline.toFixed(3)}, tether ${tether.toFixed(3)} (${ratio.toFixed(2)}; goal ${goal}, ${better} is better)`)
}

/** Medians of the picked figure of `runs` interleaved runs of each spec. */
const interleaved = async (specs: ReadonlyArray<Spec>, runs = RUNS): Promise<Array<number>> =>
  (await interleavedSamples(specs, runs)).map((xs) => median(xs.map((x) => x.value)))

const range = (xs: Array<number>, scale: number, digits: number) =>
  `${fmt(Math.min(...xs) * scale, digits)}..${fmt(Math.max(...xs) * scale, digits)}`

/**
 * The bytes echo rows: throughput, and the goal figure, the server's own
 * CPU per frame (per MB for large frames) over the measured window, which
 * a closed loop bound by its load generator does not hide. Spreads are the
 * runs' min..max; the pair ratios are each run's tether over the raw run
 * beside it.
 */
const echo = async (
  name: string,
  args: Array<string>,
  runs: number,
  goals: { readonly throughput: string; readonly cpu: string },
  unit: { readonly rate: string; readonly pick: (r: any) => number; readonly per: (r: any) => number; readonly cpuUnit: string; readonly perName: string; readonly cpuScale: number; readonly digits: number }
) => {
  const [raw, tether, variant] = await interleavedSamples([
    { kind: "raw", args, pick: unit.pick, per: unit.per },
    { kind: "tether", args, pick: unit.pick, per: unit.per },
    ...(hasVariant ? [{ kind: "tether-variant" as const, args, pick: unit.pick, per: unit.per }] : [])
  ], runs)
  if (variant !== undefined) {
    const cpu = (xs: Array<Sample>) => xs.map((x) => x.cpuPer)
    const vsTether = cpu(variant).map((v, i) => v / cpu(tether!)[i]!)
    report(
      `variant: server CPU per ${unit.cpuUnit.split("/ ")[1]}, ${name.replace("bytes echo, ", "")}`,
      unit.cpuUnit,
      median(cpu(raw!)) * unit.cpuScale,
      median(cpu(variant)) * unit.cpuScale,
      "(A/B)",
      "lower",
      `variant / tether pair ratios ${range(vsTether, 1, 3)} (median ${fmt(median(vsTether), 3)}); runs ${range(cpu(variant), unit.cpuScale, unit.digits)}; peak RSS ${range(variant.map((x) => x.peakRss / 1048576), 1, 0)} MiB`,
      unit.digits
    )
  }
  const values = (xs: Array<Sample>, f: (x: Sample) => number) => xs.map(f)
  report(name, unit.rate, median(values(raw!, (x) => x.value)), median(values(tether!, (x) => x.value)), goals.throughput, "higher")
  const rawCpu = values(raw!, (x) => x.cpuPer)
  const tetherCpu = values(tether!, (x) => x.cpuPer)
  const pairs = rawCpu.map((r, i) => tetherCpu[i]! / r)
  const perIo = (xs: Array<Sample>, f: (x: Sample) => number) => fmt(median(values(xs, f)), unit.perName === "MB" ? 3 : 1)
  const offMain = (xs: Array<Sample>) => `${fmt(median(values(xs, (x) => x.offMain)) * 100, 1)}%`
  const busy = (xs: Array<Sample>) => `${fmt(median(values(xs, (x) => x.busy)) * 100, 0)}%`
  report(
    `server CPU per ${unit.cpuUnit.split("/ ")[1]}, ${name.replace("bytes echo, ", "")}`,
    unit.cpuUnit,
    median(rawCpu) * unit.cpuScale,
    median(tetherCpu) * unit.cpuScale,
    goals.cpu,
    "lower",
    `runs ${range(rawCpu, unit.cpuScale, unit.digits)} / ${range(tetherCpu, unit.cpuScale, unit.digits)}; pair ratios ${range(pairs, 1, 2)}; server core busy ${busy(raw!)} / ${busy(tether!)} (off the main thread ${offMain(raw!)} / ${offMain(tether!)}); ${unit.perName} per read ${perIo(raw!, (x) => x.perRead)} / ${perIo(tether!, (x) => x.perRead)}, per write ${perIo(raw!, (x) => x.perWrite)} / ${perIo(tether!, (x) => x.perWrite)}`,
    unit.digits
  )
  const rawRss = values(raw!, (x) => x.peakRss / 1048576)
  const tetherRss = values(tether!, (x) => x.peakRss / 1048576)
  const rawStart = values(raw!, (x) => x.startRss / 1048576)
  const tetherStart = values(tether!, (x) => x.startRss / 1048576)
  report(
    `peak RSS under load, ${name.replace("bytes echo, ", "")}`,
    "MiB",
    median(rawRss),
    median(tetherRss),
    "<= 1.5",
    "lower",
    `runs ${range(rawRss, 1, 0)} / ${range(tetherRss, 1, 0)}; before the load ${fmt(median(rawStart), 0)} / ${fmt(median(tetherStart), 0)} MiB, growth under load ${fmt(median(rawRss) - median(rawStart), 0)} / ${fmt(median(tetherRss) - median(tetherStart), 0)} MiB`
  )
}

const throughput = async () => {
  const duration = process.env.BENCH_DURATION ?? (quick ? "1000" : "2000")
  // 2 s of warm-up, not 0.5: on a busy machine the server gets a fraction
  // of its core, and with 0.5 s V8 was still compiling Tether's hot path
  // inside the measured window (a third of its CPU off the main thread).
  const warmup = process.env.BENCH_WARMUP ?? "2000"
  const runs = quick ? RUNS : THROUGHPUT_RUNS
  if (want("echo64")) {
    const small = ["throughput", "--conns", "50", "--depth", "32", "--size", "64", "--duration", duration, "--warmup", warmup]
    await echo("bytes echo, 50 conns x 32 x 64 B", small, runs, { throughput: ">= 0.90", cpu: "<= 1.11" }, {
      rate: "frames/s",
      pick: (r) => r.framesPerSec,
      per: (r) => r.frames,
      cpuUnit: "us / frame",
      perName: "frames",
      cpuScale: 1e6,
      digits: 3
    })
  }
  if (want("echo16k")) {
    const big = ["throughput", "--conns", "1", "--depth", "8", "--size", "16384", "--duration", duration, "--warmup", warmup]
    await echo("bytes echo, 1 conn x 8 x 16 KiB", big, runs, { throughput: ">= 0.98", cpu: "<= 1.05" }, {
      rate: "MB/s",
      pick: (r) => r.mbPerSec,
      per: (r) => (r.frames * r.size) / 1e6,
      cpuUnit: "ms / MB",
      perName: "MB",
      cpuScale: 1e3,
      digits: 3
    })
  }
}

const typed = async () => {
  const duration = quick ? "1000" : "2000"
  const args = ["typed", "--conns", "50", "--depth", "32", "--size", "64", "--duration", duration]
  const messages = (r: any) => r.messagesPerSec as number
  const [raw, json, msgpack] = await interleaved([
    { kind: "raw-json", args, pick: messages },
    { kind: "tether-json", args, pick: messages },
    { kind: "tether-msgpack", args: [...args, "--msgpack"], pick: messages }
  ])
  report("Schema-typed JSON request/response", "msg/s", raw!, json!, ">= 0.60", "higher", "baseline: raw JSON.parse/stringify lines")
  report("Schema-typed MessagePack request/response", "msg/s", raw!, msgpack!, "(info)", "higher", "same raw JSON baseline")
}

const latency = async () => {
  const args = ["latency", "--size", "64", "--count", quick ? "10000" : "20000"]
  const p99 = (r: any) => r.p99 as number
  const [raw, tether] = await interleaved([{ kind: "raw", args, pick: p99 }, { kind: "tether", args, pick: p99 }])
  report("ping-pong p99 latency, 1 conn, 64 B", "us", raw!, tether!, "<= 1.3", "lower")
}

const idle = async (conns: number, runs: number) => {
  const heartbeat = { interval: 1000, timeout: 3000 }
  const measure = async (kind: ServerKind) => {
    const perConn: Array<number> = []
    let alive = 0
    let cpu = 0
    for (let i = 0; i < runs; i++) {
      const server = await startServer(kind, heartbeat)
      const pid = server.child.pid!
      const before = rssOf(pid)
      let cpuStart = 0
      let tStart = 0
      let during = before
      const hold = conns >= 10_000 ? 8000 : 5000
      const result = await load(server.port, ["idle", "--conns", String(conns), "--hold", String(hold)], (event) => {
        if (event.event === "connected") {
          // Measure after the ramp: one second to settle, then CPU over the rest of the hold.
          setTimeout(() => {
            cpuStart = cpuOf(pid)
            tStart = Date.now()
          }, 1000)
          setTimeout(() => {
            during = rssOf(pid)
            cpu = (cpuOf(pid) - cpuStart) / ((Date.now() - tStart) / 1000)
          }, hold - 500)
        }
      })
      alive = result.alive
      perConn.push((during - before) / conns)
      await stopServer(server)
    }
    return { perConn: median(perConn), alive, cpu }
  }
  const raw = await measure("raw")
  const tether = await measure("tether")
  if (conns <= 5000) {
    report(`RSS growth per idle heartbeated conn (${fmt(conns)})`, "KiB", raw.perConn / 1024, tether.perConn / 1024, "<= 2", "lower", `alive ${raw.alive} / ${tether.alive}`)
  } else {
    rows.push([
      `${fmt(conns)} idle heartbeated conns`,
      `${raw.alive} alive, CPU ${(raw.cpu * 100).toFixed(1)}%`,
      `${tether.alive} alive, CPU ${(tether.cpu * 100).toFixed(1)}%`,
      "-",
      "all alive, CPU < 25%",
      `RSS/conn ${fmt(raw.perConn / 1024, 1)} / ${fmt(tether.perConn / 1024, 1)} KiB`
    ])
  }
}

const kick = async () => {
  const heartbeat = { interval: 200, timeout: 600 }
  const args = ["kick", "--conns", "100", "--wait", "3000"]
  const measure = async (kind: ServerKind) => {
    const mins: Array<number> = []
    const maxes: Array<number> = []
    for (let i = 0; i < RUNS; i++) {
      const server = await startServer(kind, heartbeat)
      const r = await load(server.port, args)
      mins.push(r.min)
      maxes.push(r.max)
      await stopServer(server)
    }
    return { min: median(mins), max: median(maxes) }
  }
  const raw = await measure("raw")
  const tether = await measure("tether")
  rows.push(["kick detection, 100 silent conns (600 ms / 200 ms)", `${raw.min}..${raw.max} ms`, `${tether.min}..${tether.max} ms`, "-", "within 600..800 ms", ""])
}

/**
 * WebSocket rows: Schema-typed JSON request/response over Tether's WebSocket
 * transport beside a raw `ws` server doing JSON.parse / stringify per
 * message (same load generator, `ws-loadgen.ts`), with each server's own CPU
 * per message; and RSS per idle heartbeated WebSocket session.
 */
const websocket = async () => {
  const duration = quick ? "1000" : "2000"
  const args = ["typed", "--conns", "50", "--depth", "32", "--size", "64", "--duration", duration]
  const rates: Record<string, Array<number>> = { "ws-raw": [], "ws-tether": [] }
  const cpu: Record<string, Array<number>> = { "ws-raw": [], "ws-tether": [] }
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ["ws-raw", "ws-tether"] as const) {
      const server = await startServer(kind)
      try {
        const pid = server.child.pid!
        const cpu0 = cpuOf(pid)
        const r = await load(server.port, args, () => {}, "ws-loadgen.js")
        rates[kind]!.push(r.messagesPerSec)
        cpu[kind]!.push(((cpuOf(pid) - cpu0) * 1e6) / r.received)
      } finally {
        await stopServer(server)
      }
    }
  }
  const us = (kind: string) => fmt(median(cpu[kind]!), 1)
  report("Schema-typed JSON request/response over WebSocket, 50 x 32", "msg/s", median(rates["ws-raw"]!), median(rates["ws-tether"]!), "(info)", "higher",
    `baseline: raw \`ws\` + JSON.parse/stringify; server CPU ${us("ws-raw")} / ${us("ws-tether")} us/msg (incl. the run's setup)`)

  const conns = 2000
  const hold = 5000
  const idleOf = async (kind: ServerKind) => {
    const perConn: Array<number> = []
    let alive = 0
    for (let i = 0; i < (quick ? 1 : RUNS); i++) {
      const server = await startServer(kind, { interval: 1000, timeout: 3000 })
      const pid = server.child.pid!
      const before = rssOf(pid)
      let during = before
      const result = await load(server.port, ["idle", "--conns", String(conns), "--hold", String(hold)], (event) => {
        if (event.event === "connected") setTimeout(() => (during = rssOf(pid)), hold - 500)
      }, "ws-loadgen.js")
      alive = result.alive
      perConn.push((during - before) / conns)
      await stopServer(server)
    }
    return { perConn: median(perConn), alive }
  }
  const raw = await idleOf("ws-raw")
  const tether = await idleOf("ws-tether")
  report(`RSS growth per idle heartbeated WebSocket session (${fmt(conns)})`, "KiB", raw.perConn / 1024, tether.perConn / 1024, "(info)", "lower",
    `raw \`ws\` pings every 1 s; tether: Ping / Pong messages every 1 s; alive ${raw.alive} / ${tether.alive}`)
}

/**
 * Cluster rows: bench/cluster.ts in a child process (3 rounds, no
 * redis-benchmark), on `REDIS_URL` (default the machine's Redis). The
 * latency row's baseline is the hand-written relay of bench/raw-relay.ts
 * (what a Redis hop adds to it); the CPU row compares the cluster with
 * Tether on one node, as its goal does. Without a Redis: one row saying so.
 */
const cluster = async () => {
  const child = spawn(process.execPath, [path.join(here, "cluster.js")], {
    env: { ...process.env, BENCH_ROUNDS: quick ? "1" : "3", BENCH_CEILING: "0" },
    stdio: ["ignore", "pipe", "inherit"]
  })
  let out = ""
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "))
  if (code !== 0 || line === undefined) {
    rows.push(["cluster (two nodes on Redis)", "-", "-", "-", "-", `not run: bench/cluster.js exited ${code} (is Redis at ${process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"}?)`])
    return
  }
  const r = JSON.parse(line.slice("BENCH_JSON ".length))
  const us = (ms: number) => fmt(ms * 1000)
  report("cluster: p99 a Redis hop adds, one line at a time", "us", r.rawAddedP99, r.addedP99, "tether < 500 us", "lower",
    `baseline: raw relay (raw-relay.ts) on the same Redis; pooled ${fmt(r.lines)} lines per set-up, ${r.rounds} interleaved rounds (median of rounds ${fmt(r.medianRoundAddedP99)} us); p50 / p99 one node ${us(r.one.p50)} / ${us(r.one.p99)}, same node ${us(r.same.p50)} / ${us(r.same.p99)}, cross node ${us(r.cross.p50)} / ${us(r.cross.p99)} us`)
  rows.push([
    "cluster: server CPU per delivered line, 64 in flight, 3 members",
    `${fmt(r.cpuOne, 1)} us (one node)`,
    `${fmt(r.cpuCluster, 1)} us (two nodes)`,
    r.cpuRatio.toFixed(2),
    "<= 2",
    `baseline: Tether on one node, memory; lines/s ${fmt(r.linesOne)} / ${fmt(r.linesCluster)}; median of ${r.rounds} rounds`
  ])
}

// --write replaces the header and table of bench/RESULTS.md and keeps the
// written analysis after them: everything from the first "## " heading on.
const writeResults = (text: string) => {
  const file = path.join(root, "bench/RESULTS.md")
  const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  const at = existing.search(/^## /m)
  fs.writeFileSync(file, at < 0 ? text : `${text}\n${existing.slice(at)}`)
}

const main = async () => {
  const started = Date.now()
  if (want("echo64") || want("echo16k")) await throughput()
  if (want("typed")) await typed()
  if (want("latency")) await latency()
  if (want("kick")) await kick()
  if (want("idle")) await idle(5000, quick ? 1 : RUNS)
  if (want("idle10k")) await idle(10_000, 1)
  if (want("websocket")) await websocket()
  if (want("cluster")) await cluster()
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  const header = `# Tether benchmark\n\n${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC · node ${process.version} · ${os.cpus()[0]?.model ?? "?"} x ${os.cpus().length} · ${
    hasTaskset ? "server on CPU 0, load generator on CPU 1 (taskset)" : "not pinned (no taskset)"
  } · median of ${RUNS} interleaved runs (bytes echo: ${quick ? RUNS : THROUGHPUT_RUNS}; 5,000 idle: ${quick ? 1 : RUNS}; 10,000 idle: 1) · ${seconds} s\n\nCommand: \`npm run bench${quick ? " -- --quick" : ""}\`\n`
  const table = [
    "| figure | raw node:net | tether | ratio | goal | note |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")
  const text = `${header}\n${table}\n`
  console.log(text)
  if (process.argv.includes("--write")) writeResults(text)
  process.exit(0)
}

setTimeout(() => {
  console.error("bench: time limit (10 minutes) reached")
  process.exit(1)
}, 600_000).unref()
void main()
