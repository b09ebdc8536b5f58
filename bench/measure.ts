/**
 * One measured run of one server (its own CPU time, RSS and syscalls read
 * from /proc at the load generator's window markers), and runs of several
 * servers interleaved. Used by run.ts.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { cpuByThreadOf, load, logDir, peakRssOf, rssOf, type ServerKind, startServer, stopServer, syscallsOf } from "./servers.js"

export const RUNS = Number(process.env.BENCH_RUNS ?? 3)

export interface Spec {
  readonly kind: ServerKind
  readonly args: Array<string>
  readonly pick: (r: any) => number
  /**
   * What the server's CPU time over the measured window is divided by (e.g.
   * frames, MB): given, the load generator's window markers are watched and
   * the server's CPU time and peak RSS are read at them.
   */
  readonly per?: (r: any) => number
}

/** One run of one server: the picked figure and, with `per`, the server's own costs. */
export interface Sample {
  readonly value: number
  /** Server CPU seconds per unit of `per`, over the measured window only. */
  readonly cpuPer: number
  /** Share of one core the server used over the window. */
  readonly busy: number
  /** Share of that CPU time spent off the main thread (GC helpers, compiler threads). */
  readonly offMain: number
  /** Peak RSS of the server, bytes, read at the end of the window. */
  readonly peakRss: number
  /** RSS of the started server before any load, bytes. */
  readonly startRss: number
  /** Units of `per` for each read and each write syscall of the server over the window. */
  readonly perRead: number
  readonly perWrite: number
}

export const measured = async (spec: Spec): Promise<Sample> => {
  const server = await startServer(spec.kind)
  const pid = server.child.pid!
  try {
    const startRss = rssOf(pid)
    let cpuStart = { all: 0, main: 0 }
    let cpuEnd = cpuStart
    let tStart = 0n
    let tEnd = 0n
    let peakRss = 0
    let ioStart = { reads: 0, writes: 0 }
    let ioEnd = ioStart
    const result = await load(server.port, spec.args, (event) => {
      if (event.event !== "window" || spec.per === undefined) return
      if (event.phase === "start") {
        cpuStart = cpuByThreadOf(pid)
        ioStart = syscallsOf(pid)
        tStart = process.hrtime.bigint()
      } else {
        cpuEnd = cpuByThreadOf(pid)
        ioEnd = syscallsOf(pid)
        tEnd = process.hrtime.bigint()
        peakRss = peakRssOf(pid)
      }
    })
    const cpu = cpuEnd.all - cpuStart.all
    const mainCpu = cpuEnd.main - cpuStart.main
    if (logDir !== undefined && spec.per !== undefined) {
      const window = {
        kind: spec.kind,
        pid,
        startUs: Number(tStart / 1000n),
        endUs: Number(tEnd / 1000n),
        per: spec.per(result),
        cpu,
        mainCpu,
        reads: ioEnd.reads - ioStart.reads,
        writes: ioEnd.writes - ioStart.writes
      }
      fs.appendFileSync(path.join(logDir, "windows.jsonl"), JSON.stringify(window) + "\n")
    }
    return {
      value: spec.pick(result),
      cpuPer: spec.per ? cpu / spec.per(result) : NaN,
      busy: spec.per ? cpu / (Number(tEnd - tStart) / 1e9) : NaN,
      offMain: spec.per ? (cpu - mainCpu) / cpu : NaN,
      peakRss,
      startRss,
      perRead: spec.per ? spec.per(result) / (ioEnd.reads - ioStart.reads) : NaN,
      perWrite: spec.per ? spec.per(result) / (ioEnd.writes - ioStart.writes) : NaN
    }
  } finally {
    await stopServer(server)
  }
}

/**
 * `runs` runs of each spec, interleaved (a, b, a, b, ...) so a drift of the
 * machine during the scenario weighs on every server alike.
 */
export const interleavedSamples = async (specs: ReadonlyArray<Spec>, runs = RUNS): Promise<Array<Array<Sample>>> => {
  const samples = specs.map((): Array<Sample> => [])
  for (let i = 0; i < runs; i++) {
    for (const [at, spec] of specs.entries()) samples[at]!.push(await measured(spec))
  }
  return samples
}

