/**
 * How fast a burst of connections becomes running sessions: the load
 * generator connects C sockets (the kernel completes them at once), then we
 * wait until the server has accepted and started every one. Raw node:net
 * beside Tether's server in the same process configuration.
 *
 *   node bench/build/accept-rate.js [--conns 2000]
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startInProcess } from "./inProcessServer.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const at = process.argv.indexOf("--conns")
const conns = at === -1 ? 2000 : Number(process.argv[at + 1])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const burst = async (port: number, live: () => number) => {
  const t0 = Date.now()
  const load = spawn(process.execPath, [path.join(here, "loadgen.js"), "idle", "--port", String(port), "--conns", String(conns), "--hold", "30000"], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  let connected = 0
  load.stdout!.on("data", (c: Buffer) => c.toString().includes("connected") && (connected = Date.now() - t0))
  while (live() < conns && Date.now() - t0 < 30_000) await sleep(5)
  const running = Date.now() - t0
  while (connected === 0 && Date.now() - t0 < 30_000) await sleep(5)
  load.kill("SIGKILL")
  await sleep(500)
  return { connected, running }
}

const main = async () => {
  let rawLive = 0
  const raw = net.createServer((s) => {
    rawLive++
    s.on("error", () => {})
    s.on("close", () => rawLive--)
  })
  await new Promise<void>((r) => raw.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => r()))
  const rawResult = await burst((raw.address() as net.AddressInfo).port, () => rawLive)
  raw.close()

  const tether = await startInProcess(() => undefined)
  const tetherResult = await burst(tether.port, tether.connections)
  console.log(`# Accepting a burst of ${conns} connections\n`)
  console.log("| server | load generator connected (kernel) | all running on the server |")
  console.log("|---|---|---|")
  console.log(`| raw node:net | ${rawResult.connected} ms | ${rawResult.running} ms |`)
  console.log(`| tether | ${tetherResult.connected} ms | ${tetherResult.running} ms |`)
  process.exit(0)
}

void main()
