/**
 * What a server holds before its first connection: tether-server in each
 * mode (echo, classic, chat, chat --http-port) and the raw node:net echo
 * server, each started as the bench starts it (`--max-semi-space-size=1`,
 * port 0), read from /proc one second after it says "listening": RSS, peak
 * RSS (VmHWM), and RSS split into anonymous memory (heap, code, malloc) and
 * file pages (node's own binary as far as it has run). Medians of N starts,
 * interleaved. With --heap, also the V8 heap used after a full GC (a
 * preloaded module reads it; needs nothing else).
 *
 *   node bench/build/startup-rss.js [--runs 3] [--heap]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { echoServerFlags, serverArgv } from "./servers.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const tetherBin = path.resolve(here, "../../apps/server/bin/tether-server")
const at = process.argv.indexOf("--runs")
const runs = at === -1 ? 3 : Number(process.argv[at + 1])
const heap = process.argv.includes("--heap")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const rows: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["raw node:net echo", serverArgv("raw")],
  ["tether-server --mode echo", [tetherBin, "--mode", "echo", "--port", "0"]],
  ["tether-server --mode classic", [tetherBin, "--mode", "classic", "--port", "0"]],
  ["tether-server --mode chat", [tetherBin, "--mode", "chat", "--port", "0"]],
  ["tether-server --mode chat --http-port 0", [tetherBin, "--mode", "chat", "--port", "0", "--http-port", "0"]]
]

// Preloaded with --import under --heap: on SIGUSR2, a full GC and the heap used on stderr.
const probe = path.join(os.tmpdir(), `startup-rss-probe-${process.pid}.mjs`)
fs.writeFileSync(
  probe,
  `import v8 from "node:v8"
process.on("SIGUSR2", () => { globalThis.gc(); process.stderr.write("HEAP " + v8.getHeapStatistics().used_heap_size + "\\n") })
`
)

interface Sample {
  readonly rss: number
  readonly hwm: number
  readonly anon: number
  readonly file: number
  readonly heapUsed: number
}

const status = (pid: number, field: string) =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024

const sample = async (argv: ReadonlyArray<string>): Promise<Sample> => {
  const flags = [...echoServerFlags, ...(heap ? ["--expose-gc", "--import", probe] : [])]
  const child = spawn(process.execPath, [...flags, ...argv], { stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  let err = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()))
  try {
    for (let waited = 0; !/listening on/.test(out); waited += 50) {
      if (waited > 20_000 || child.exitCode !== null) throw new Error(`${argv.join(" ")} did not start: ${out}${err}`)
      await sleep(50)
    }
    await sleep(1000)
    const pid = child.pid!
    const taken = { rss: status(pid, "VmRSS"), hwm: status(pid, "VmHWM"), anon: status(pid, "RssAnon"), file: status(pid, "RssFile") }
    let heapUsed = NaN
    if (heap) {
      child.kill("SIGUSR2")
      for (let waited = 0; !/HEAP \d+/.test(err) && waited < 5000; waited += 50) await sleep(50)
      heapUsed = Number(/HEAP (\d+)/.exec(err)?.[1]) / 1048576
    }
    return { ...taken, heapUsed }
  } finally {
    child.kill("SIGKILL")
    await new Promise((r) => child.exitCode !== null ? r(undefined) : child.once("exit", r))
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const samples = rows.map(() => [] as Array<Sample>)
for (let run = 0; run < runs; run++) {
  for (const [i, [, argv]] of rows.entries()) samples[i]!.push(await sample(argv))
}
fs.rmSync(probe, { force: true })

const fmt = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1))
console.log(`${new Date().toISOString().slice(0, 16)} UTC · node ${process.version} · median of ${runs} starts · load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`)
console.log(`| process, 1 s after listening | RSS MiB | peak RSS MiB | anonymous | file pages | heap used after GC |`)
console.log(`|---|---|---|---|---|---|`)
for (const [i, [name]] of rows.entries()) {
  const s = samples[i]!
  const m = (f: (x: Sample) => number) => fmt(median(s.map(f)))
  console.log(`| ${name} | ${m((x) => x.rss)} | ${m((x) => x.hwm)} | ${m((x) => x.anon)} | ${m((x) => x.file)} | ${m((x) => x.heapUsed)} |`)
}
