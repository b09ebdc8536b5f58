/**
 * The bench's processes: servers started pinned to CPU 0 (taskset) on a free
 * port, the load generator on CPU 1, and what /proc says about a server
 * (CPU time by thread, RSS, syscalls). Used by run.ts.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../..")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-c", "0", "true"])
    return os.cpus().length >= 2
  } catch {
    return false
  }
})()
export const pinned = (cpu: number, argv: Array<string>) =>
  hasTaskset ? ["taskset", ["-c", String(cpu), process.execPath, ...argv]] as const : [process.execPath, argv] as const

export type ServerKind = "raw" | "tether" | "tether-variant" | "raw-json" | "tether-json" | "tether-msgpack" | "ws-raw" | "ws-tether"

/**
 * A/B work (see bench/README.md): with BENCH_VARIANT_ROOT (another build of
 * the repo: a copy with its dist folders and node_modules) or
 * BENCH_VARIANT_FLAGS (node flags), the echo rows also run "tether-variant",
 * interleaved with the other two, and report it against raw and tether.
 */
export const variantRoot = process.env.BENCH_VARIANT_ROOT
export const variantFlags = process.env.BENCH_VARIANT_FLAGS?.split(" ").filter((flag) => flag.length > 0) ?? []
export const hasVariant = variantRoot !== undefined || variantFlags.length > 0

export const serverArgv = (kind: ServerKind, heartbeat?: { interval: number; timeout: number }): Array<string> => {
  switch (kind) {
    case "raw":
      return [path.join(here, "raw-echo-server.js"), ...(heartbeat ? ["--heartbeat-interval", String(heartbeat.interval), "--heartbeat-timeout", String(heartbeat.timeout)] : [])]
    case "tether":
    case "tether-variant":
      return [
        ...(kind === "tether-variant" ? variantFlags : []),
        path.join(kind === "tether-variant" ? variantRoot ?? root : root, "apps/server/bin/tether-server"),
        "--mode",
        "echo",
        "--port",
        "0",
        "--log-level",
        "info",
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

export interface Started {
  readonly child: ChildProcess
  readonly port: number
}

/**
 * For profiling work (see bench/README.md): BENCH_NODE_FLAGS are passed to
 * every server's node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p", "--trace-gc");
 * servers are then stopped with SIGTERM so they can write their profiles.
 * With BENCH_LOG_DIR each server's stdout goes to DIR/KIND-PID.log and every
 * measured window to DIR/windows.jsonl (pid, monotonic start and end in us,
 * frames, server CPU), which bench/cpuprofile-diff.ts reads.
 */
export const nodeFlags = process.env.BENCH_NODE_FLAGS?.split(" ").filter((flag) => flag.length > 0) ?? []
export const logDir = process.env.BENCH_LOG_DIR

/**
 * The V8 flags tether-server runs with (its bin's shebang), given to the raw
 * server too so both run alike: a 1 MiB young generation. The raw server's
 * stays at 1 MiB anyway; Tether's grew to 16 MiB while Effect and the CLI
 * loaded and cost ~30 MiB of RSS and 10-30% more CPU per frame (RESULTS.md).
 */
export const echoServerFlags = ["--max-semi-space-size=1"]

export const startServer = async (kind: ServerKind, heartbeat?: { interval: number; timeout: number }): Promise<Started> => {
  const heapFlags = kind === "raw" || kind === "tether" || kind === "tether-variant" ? echoServerFlags : []
  const [cmd, argv] = pinned(0, [...heapFlags, ...nodeFlags, ...serverArgv(kind, heartbeat)])
  const child = spawn(cmd, [...argv], { stdio: ["ignore", "pipe", "inherit"] })
  const log = logDir !== undefined ? fs.createWriteStream(path.join(logDir, `${kind}-${child.pid}.log`)) : undefined
  const port = await new Promise<number>((resolve, reject) => {
    let out = ""
    let found = false
    child.stdout!.on("data", (c: Buffer) => {
      log?.write(c)
      if (found) return
      out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m) {
        found = true
        resolve(Number(m[1]))
      }
    })
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)))
    setTimeout(() => reject(new Error(`${kind} server did not start`)), 10_000)
  })
  await sleep(200)
  return { child, port }
}

export const stopServer = async ({ child }: Started) => {
  if (nodeFlags.length > 0) {
    // A clean exit, so --cpu-prof and friends write their files.
    child.kill("SIGTERM")
    const exited = await Promise.race([new Promise((r) => child.once("exit", () => r(true))), sleep(10_000)])
    if (exited === true) return
  }
  child.kill("SIGKILL")
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(2000)])
}

/** Runs the load generator; resolves with its last JSON line, calling onLine for every line. */
export const load = (port: number, args: Array<string>, onLine: (event: any) => void = () => {}, generator = "loadgen.js") =>
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

export const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024
/** Peak RSS of a process so far (VmHWM), in bytes. */
export const peakRssOf = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024
/**
 * CPU seconds (user + system) a process has used, all its threads (GC
 * helpers included): the sum of each thread's on-CPU time in
 * /proc/PID/task/TID/schedstat (nanoseconds), or /proc/PID/stat's clock
 * ticks (10 ms) where schedstat is missing. The server's pid is the child's:
 * taskset execs node.
 */
export const cpuOf = (pid: number) => cpuByThreadOf(pid).all
/** {@link cpuOf}, and the main (JavaScript) thread's share of it. */
export const cpuByThreadOf = (pid: number): { all: number; main: number } => {
  try {
    let all = 0
    let main = 0
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0])
      all += ns
      if (tid === String(pid)) main = ns
    }
    return { all: all / 1e9, main: main / 1e9 }
  } catch {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    const all = (Number(fields[11]) + Number(fields[12])) / 100
    return { all, main: all }
  }
}
/** Read and write syscalls a process has made (/proc/PID/io). */
export const syscallsOf = (pid: number) => {
  const io = fs.readFileSync(`/proc/${pid}/io`, "utf8")
  return { reads: Number(/syscr: (\d+)/.exec(io)![1]), writes: Number(/syscw: (\d+)/.exec(io)![1]) }
}
