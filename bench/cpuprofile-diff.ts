/**
 * Self time by function of two servers' `--cpu-prof` profiles, side by side,
 * over the measured window only, in nanoseconds per unit (per frame for the
 * echo rows). Two forms:
 *
 *   node bench/build/cpuprofile-diff.js DIR [--top N]
 *     DIR as written by a bench run with BENCH_LOG_DIR=DIR and
 *     BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR": every profile is cut
 *     to its server's window (windows.jsonl) and divided by the window's
 *     frames; profiles of one kind (raw, tether) are summed.
 *   node bench/build/cpuprofile-diff.js A.cpuprofile B.cpuprofile [--units-a N --units-b N] [--top N]
 *     whole profiles, divided by N units each (default 1: microseconds).
 *
 * Sampled self time is wall time on the sampled thread while it ran
 * JavaScript or native code called from it; "(garbage collector)" is the
 * main thread's share of GC, "(program)" native work outside JavaScript
 * (libuv, syscalls entered from C++), "(idle)" waiting in epoll.
 */
import * as fs from "node:fs"
import * as path from "node:path"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Self time in microseconds by function ("name file:line"), over [from, to) (monotonic us). */
const selfTime = (profile: Profile, from = -Infinity, to = Infinity): Map<string, number> => {
  const names = new Map<number, string>()
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame
    const file = url === "" ? "" : ` ${path.basename(url)}:${lineNumber + 1}`
    names.set(node.id, `${functionName || "(anonymous)"}${file}`)
  }
  const out = new Map<string, number>()
  let at = profile.startTime
  // Each sample's time is the delta to the next one (V8 records the gap before it).
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!
    const weight = profile.timeDeltas[i + 1] ?? 0
    if (at < from || at >= to) continue
    const name = names.get(profile.samples[i]!)!
    out.set(name, (out.get(name) ?? 0) + weight)
  }
  return out
}

const add = (into: Map<string, number>, from: Map<string, number>, scale: number) => {
  for (const [name, us] of from) into.set(name, (into.get(name) ?? 0) + us * scale)
}

const arg = (name: string): number | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? undefined : Number(process.argv[at + 1])
}

const load = (file: string): Profile => JSON.parse(fs.readFileSync(file, "utf8"))

interface Window {
  readonly kind: string
  readonly pid: number
  readonly startUs: number
  readonly endUs: number
  readonly per: number
  readonly cpu: number
}

/** Per-kind self time in ns per unit, averaged over the runs of each kind. */
const fromDir = (dir: string): { labels: [string, string]; a: Map<string, number>; b: Map<string, number>; notes: Array<string> } => {
  const windows: Array<Window> = fs.readFileSync(path.join(dir, "windows.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
  const profiles = fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))
  const byKind = new Map<string, { total: Map<string, number>; runs: number; cpuPer: Array<number> }>()
  const notes: Array<string> = []
  for (const window of windows) {
    // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
    const file = profiles.find((f) => f.split(".")[3] === String(window.pid))
    if (file === undefined) {
      notes.push(`no profile for ${window.kind} pid ${window.pid}`)
      continue
    }
    const entry: { total: Map<string, number>; runs: number; cpuPer: Array<number> } = byKind.get(window.kind) ?? { total: new Map(), runs: 0, cpuPer: [] }
    byKind.set(window.kind, entry)
    const profile = load(path.join(dir, file))
    const span = selfTime(profile, window.startUs, window.endUs)
    let sampled = 0
    for (const us of span.values()) sampled += us
    if (sampled < 0.5 * (window.endUs - window.startUs)) {
      notes.push(`${window.kind} pid ${window.pid}: only ${(sampled / 1000).toFixed(0)} ms sampled in a ${((window.endUs - window.startUs) / 1000).toFixed(0)} ms window (clocks differ?)`)
    }
    add(entry.total, span, 1000 / window.per)
    entry.runs++
    entry.cpuPer.push((window.cpu * 1e9) / window.per)
  }
  const kinds = [...byKind.keys()]
  if (kinds.length !== 2) throw new Error(`expected two server kinds in ${dir}, found ${kinds.join(", ")}`)
  const [ka, kb] = kinds as [string, string]
  const average = (kind: string) => {
    const entry = byKind.get(kind)!
    const out = new Map<string, number>()
    add(out, entry.total, 1 / entry.runs)
    notes.push(`${kind}: ${entry.runs} runs, server CPU (all threads, /proc) ${entry.cpuPer.map((x) => x.toFixed(0)).join(", ")} ns per unit`)
    return out
  }
  return { labels: [ka, kb], a: average(ka), b: average(kb), notes }
}

const main = () => {
  const files = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !(all[i - 1] ?? "").startsWith("--"))
  const top = arg("top") ?? 40
  let labels: [string, string]
  let a: Map<string, number>
  let b: Map<string, number>
  let notes: Array<string> = []
  if (files.length === 1) {
    ;({ labels, a, b, notes } = fromDir(files[0]!))
  } else if (files.length === 2) {
    labels = [path.basename(files[0]!), path.basename(files[1]!)]
    a = new Map()
    b = new Map()
    add(a, selfTime(load(files[0]!)), 1000 / (arg("units-a") ?? 1000))
    add(b, selfTime(load(files[1]!)), 1000 / (arg("units-b") ?? 1000))
  } else {
    console.error("usage: cpuprofile-diff DIR | A.cpuprofile B.cpuprofile [--units-a N --units-b N] [--top N]")
    process.exit(2)
  }
  const names = new Set([...a.keys(), ...b.keys()])
  const rows = [...names].map((name) => ({ name, a: a.get(name) ?? 0, b: b.get(name) ?? 0 }))
  const busy = (m: Map<string, number>) => {
    let sum = 0
    for (const [name, v] of m) if (!name.startsWith("(idle)")) sum += v
    return sum
  }
  rows.sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a))
  console.log(`| function (self time) | ${labels[0]} | ${labels[1]} | difference |`)
  console.log("|---|---|---|---|")
  console.log(`| **all but (idle)** | ${busy(a).toFixed(1)} | ${busy(b).toFixed(1)} | ${(busy(b) - busy(a)).toFixed(1)} |`)
  for (const row of rows.slice(0, top)) {
    console.log(`| ${row.name.replace(/\|/g, "\\|")} | ${row.a.toFixed(1)} | ${row.b.toFixed(1)} | ${(row.b - row.a).toFixed(1)} |`)
  }
  for (const note of notes) console.log(`\n${note}`)
}

main()
