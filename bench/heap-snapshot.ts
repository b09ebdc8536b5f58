/**
 * What the heap of an idle connection is made of: two heap snapshots of the
 * shipped server configuration (direct writes, shared heartbeat scheduler),
 * before and after 2,000 idle heartbeated connections, diffed by object kind
 * (self size per connection). Writes the snapshots to the system temp folder.
 *
 *   node --expose-gc bench/build/heap-snapshot.js [--conns 2000]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import { startInProcess } from "./inProcessServer.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const at = process.argv.indexOf("--conns")
const conns = at === -1 ? 2000 : Number(process.argv[at + 1])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const gc = (globalThis as { gc?: () => void }).gc!

/** Self size and count by object kind (constructor name, closure, context, array, ...). */
const byKind = (file: string) => {
  const snapshot = JSON.parse(fs.readFileSync(file, "utf8"))
  const fields: Array<string> = snapshot.snapshot.meta.node_fields
  const types: Array<string> = snapshot.snapshot.meta.node_types[0]
  const nodes: Array<number> = snapshot.nodes
  const strings: Array<string> = snapshot.strings
  const width = fields.length
  const iType = fields.indexOf("type"), iName = fields.indexOf("name"), iSize = fields.indexOf("self_size")
  const kinds = new Map<string, { count: number; size: number }>()
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]!]!
    const name = type === "object" ? strings[nodes[i + iName]!]! : type === "closure" ? `closure ${strings[nodes[i + iName]!]}` : type
    const kind = name.slice(0, 50)
    const entry = kinds.get(kind) ?? { count: 0, size: 0 }
    entry.count++
    entry.size += nodes[i + iSize]!
    kinds.set(kind, entry)
  }
  return kinds
}

const main = async () => {
  const { port, connections: live } = await startInProcess(() => undefined)
  const before = path.join(os.tmpdir(), "tether-before.heapsnapshot")
  const after = path.join(os.tmpdir(), "tether-after.heapsnapshot")
  gc()
  v8.writeHeapSnapshot(before)
  const load = spawn(process.execPath, [path.join(here, "loadgen.js"), "idle", "--port", String(port), "--conns", String(conns), "--hold", "60000"], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const t0 = Date.now()
  await new Promise<void>((r) => load.stdout!.on("data", (c: Buffer) => c.toString().includes("connected") && r()))
  const connectedAt = Date.now() - t0
  // The load generator's connects complete in the kernel; wait until the server runs them all.
  while (live() < conns && Date.now() - t0 < 30_000) await sleep(20)
  const runningAt = Date.now() - t0
  await sleep(1000)
  gc()
  v8.writeHeapSnapshot(after)
  load.kill("SIGKILL")
  const a = byKind(before)
  const b = byKind(after)
  const rows = [...b.entries()].map(([kind, v]) => {
    const o = a.get(kind) ?? { count: 0, size: 0 }
    return { kind, count: (v.count - o.count) / conns, size: (v.size - o.size) / conns }
  }).sort((x, y) => y.size - x.size)
  const total = rows.reduce((n, r) => n + r.size, 0)
  console.log(`# Heap per idle connection by object kind (${conns} connections, self sizes)\n`)
  console.log(`total: ${(total / 1024).toFixed(1)} KiB per connection; all ${conns} connected after ${connectedAt} ms (kernel), all running on the server after ${runningAt} ms\n`)
  console.log("| kind | bytes / conn | objects / conn |")
  console.log("|---|---|---|")
  for (const r of rows.slice(0, 20)) console.log(`| ${r.kind || "(anonymous)"} | ${r.size.toFixed(0)} | ${r.count.toFixed(1)} |`)
  process.exit(0)
}

void main()
