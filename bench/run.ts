/**
 * The benchmark (npm run bench): each server started fresh per scenario on a
 * free port, one process, pinned to CPU 0 with the load generator on CPU 1
 * (taskset), figures reported beside the raw node:net baseline of the same
 * run as ratios, medians of RUNS runs interleaved server by server (raw,
 * tether, raw, tether, ...). Bounded to about 5 minutes. Writes the
 * table to stdout (and to bench/RESULTS.md with --write).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../..")
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
// The bytes echo throughput figures swing by up to +-20% from one 2 s run to
// the next for either server (closed loop: how many frames a read carries
// is timing): more runs for their medians.
const THROUGHPUT_RUNS = Math.max(RUNS, Number(process.env.BENCH_THROUGHPUT_RUNS ?? 7))
const quick = process.argv.includes("--quick")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-c", "0", "true"])
    return os.cpus().length >= 2
  } catch {
    return false
  }
})()
const pinned = (cpu: number, argv: Array<string>) =>
  hasTaskset ? ["taskset", ["-c", String(cpu), process.execPath, ...argv]] as const : [process.execPath, argv] as const

type ServerKind = "raw" | "tether" | "raw-json" | "tether-json" | "tether-msgpack" | "ws-raw" | "ws-tether"

const serverArgv = (kind: ServerKind, heartbeat?: { interval: number; timeout: number }): Array<string> => {
  switch (kind) {
    case "raw":
      return [path.join(here, "raw-echo-server.js"), ...(heartbeat ? ["--heartbeat-interval", String(heartbeat.interval), "--heartbeat-timeout", String(heartbeat.timeout)] : [])]
    case "tether":
      return [path.join(root, "apps/server/bin/tether-server"), "--mode", "echo", "--port", "0", "--log-level", "info",
        ...(heartbeat ? ["--heartbeat-interval", `${heartbeat.interval}ms`, "--heartbeat-timeout", `${heartbeat.timeout}ms`] : [])]
    case "raw-json":
      return [path.join(here, "typed-server.js"), "raw"]
    case "tether-json":
      return [path.join(here, "typed-server.js"), "json"]
    case "tether-msgpack":
      return [path.join(here, "typed-server.js"), "msgpack"]
    case "ws-raw":
      return [path.join(here, "ws-server.js"), "raw", ...(heartbeat ? ["--heartbeat"] : [])]
    case "ws-tether":
      return [path.join(here, "ws-server.js"), "tether", ...(heartbeat ? ["--heartbeat"] : [])]
  }
}

interface Started {
  readonly child: ChildProcess
  readonly port: number
}

const startServer = async (kind: ServerKind, heartbeat?: { interval: number; timeout: number }): Promise<Started> => {
  const [cmd, argv] = pinned(0, serverArgv(kind, heartbeat))
  const child = spawn(cmd, [...argv], { stdio: ["ignore", "pipe", "inherit"] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)))
    setTimeout(() => reject(new Error(`${kind} server did not start`)), 10_000)
  })
  await sleep(200)
  return { child, port }
}

const stopServer = async ({ child }: Started) => {
  child.kill("SIGKILL")
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(2000)])
}

/** Runs the load generator; resolves with its last JSON line, calling onLine for every line. */
const load = (port: number, args: Array<string>, onLine: (event: any) => void = () => {}, generator = "loadgen.js") =>
  new Promise<any>((resolve, reject) => {
    const [cmd, argv] = pinned(1, [path.join(here, generator), args[0]!, "--port", String(port), ...args.slice(1)])
    const child = spawn(cmd, [...argv], { stdio: ["ignore", "pipe", "inherit"] })
    let last: any
    let buffered = ""
    child.stdout!.on("data", (c: Buffer) => {
      buffered += c.toString()
      let at: number
      while ((at = buffered.indexOf("\n")) !== -1) {
        last = JSON.parse(buffered.slice(0, at))
        onLine(last)
        buffered = buffered.slice(at + 1)
      }
    })
    child.once("exit", (code) => (code === 0 ? resolve(last) : reject(new Error(`loadgen ${args[0]} exited ${code}`))))
  })

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024
/** CPU seconds (user + system) a process has used. */
const cpuOf = (pid: number) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}
/** The server's own pid: taskset execs node, so the child's pid is the server's. */
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const rows: Array<Array<string>> = []
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const report = (figure: string, unit: string, baseline: number, tether: number, goal: string, better: "higher" | "lower", extra = "") => {
  const ratio = tether / baseline
  rows.push([figure, `${fmt(baseline, baseline < 100 ? 1 : 0)} ${unit}`, `${fmt(tether, tether < 100 ? 1 : 0)} ${unit}`, ratio.toFixed(2), goal, extra])
  console.error(`bench: ${figure}: baseline ${baseline.toFixed(1)}, tether ${tether.toFixed(1)} (${ratio.toFixed(2)}; goal ${goal}, ${better} is better)`)
}

interface Spec {
  readonly kind: ServerKind
  readonly args: Array<string>
  readonly pick: (r: any) => number
}

/**
 * Medians of `runs` runs of each spec, interleaved (a, b, a, b, ...) so a drift
 * of the machine during the scenario weighs on every server alike.
 */
const interleaved = async (specs: ReadonlyArray<Spec>, runs = RUNS): Promise<Array<number>> => {
  const values = specs.map((): Array<number> => [])
  for (let i = 0; i < runs; i++) {
    for (const [at, spec] of specs.entries()) {
      const server = await startServer(spec.kind)
      try {
        values[at]!.push(spec.pick(await load(server.port, spec.args)))
      } finally {
        await stopServer(server)
      }
    }
  }
  return values.map(median)
}

const throughput = async () => {
  const duration = quick ? "1000" : "2000"
  const small = ["throughput", "--conns", "50", "--depth", "32", "--size", "64", "--duration", duration]
  const frames = (r: any) => r.framesPerSec as number
  const runs = quick ? RUNS : THROUGHPUT_RUNS
  const [raw64, tether64] = await interleaved([{ kind: "raw", args: small, pick: frames }, { kind: "tether", args: small, pick: frames }], runs)
  report("bytes echo, 50 conns x 32 x 64 B", "frames/s", raw64!, tether64!, ">= 0.90", "higher")
  const big = ["throughput", "--conns", "1", "--depth", "8", "--size", "16384", "--duration", duration]
  const mb = (r: any) => r.mbPerSec as number
  const [rawBig, tetherBig] = await interleaved([{ kind: "raw", args: big, pick: mb }, { kind: "tether", args: big, pick: mb }], runs)
  report("bytes echo, 1 conn x 8 x 16 KiB", "MB/s", rawBig!, tetherBig!, ">= 0.98", "higher")
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
  // BENCH_ONLY=throughput,typed runs a subset (for profiling work); the default runs all.
  const only = process.env.BENCH_ONLY?.split(",")
  const want = (name: string) => only === undefined || only.includes(name)
  if (want("throughput")) await throughput()
  if (want("typed")) await typed()
  if (want("latency")) await latency()
  if (want("kick")) await kick()
  if (want("idle")) await idle(5000, quick ? 1 : RUNS)
  if (want("idle10k")) await idle(10_000, 1)
  if (want("websocket")) await websocket()
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
  console.error("bench: time limit (8 minutes) reached")
  process.exit(1)
}, 480_000).unref()
void main()
