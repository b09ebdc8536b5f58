/**
 * Reconnect storm with resume (issue 13): 5,000 clients are logged in to a
 * `tether-server` (chat, in memory) and hold a position in #lobby; the server
 * is restarted on the same port; every client reconnects (after a jittered
 * delay of up to 1 s, as the client's schedule starts) and logs in with its
 * resume position. Measured: the time from the new server listening until
 * every client has its answer for #lobby (an in-memory restart loses the
 * history, so the right answer is `Unrecoverable { reason: "EpochChanged" }`).
 * Goal: under 5 s on this machine. Bounded: 5,000 sockets, 30 s at most.
 *
 *   node bench/build/storm.js [--clients 5000]
 */
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const serverBin = path.join(root, "apps/server/bin/tether-server")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const json = Codec.json(Message.Message)
const frameOf = (m: Message.Message) => Buffer.from(Frame.lengthPrefixed().encode(json.encode(m) as Uint8Array) as Uint8Array)
const argIndex = process.argv.indexOf("--clients")
const clients = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 5000

const startServer = async (port: number) => {
  const child = spawn(process.execPath, [
    "--max-semi-space-size=1",
    serverBin,
    "--port",
    String(port),
    "--log-level",
    "warning",
    "--max-pending-per-address",
    "1000000",
    "--heartbeat",
    "off"
  ], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  const listening = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    setTimeout(() => reject(new Error("server did not start")), 20_000)
  })
  return { child, port: listening }
}

const stop = async (child: ChildProcess) => {
  child.kill("SIGTERM")
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(20_000)])
  if (child.exitCode === null) child.kill("SIGKILL")
}

interface Peer {
  socket: net.Socket
  answered: boolean
  answer: string | undefined
  position: Message.ResumePosition | undefined
}

/** Connects and logs in; resolves once the first answer about #lobby arrives. */
const session = (port: number, user: string, resume: Message.ResumePosition | undefined): Promise<Peer> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const decoder = Frame.lengthPrefixed().decoder()
    const peer: Peer = { socket, answered: false, answer: undefined, position: undefined }
    socket.on("data", (chunk) => {
      const frames = decoder.push(chunk)
      if (frames instanceof Error) return
      for (const f of frames) {
        const m = json.decode(f)
        if (m instanceof Error) continue
        if (m._tag === "RoomJoined" || m._tag === "Recovered" || m._tag === "Unrecoverable") {
          peer.position = { room: m.room, epoch: m.epoch, offset: m.offset }
          if (!peer.answered) {
            peer.answered = true
            peer.answer = m._tag === "Unrecoverable" ? `Unrecoverable ${m.reason}` : m._tag
            resolve(peer)
          }
        }
      }
    })
    socket.on("error", () => resolve(peer))
    socket.on("close", () => resolve(peer))
    socket.once("connect", () =>
      socket.write(frameOf(resume === undefined
        ? { _tag: "Login", user, password: "pw" }
        : { _tag: "Login", user, password: "pw", resume: [resume] }))
    )
  })

const main = async () => {
  const first = await startServer(0)
  const port = first.port
  const peers: Array<Peer> = []
  for (let i = 0; i < clients; i += 250) {
    peers.push(...(await Promise.all(Array.from({ length: Math.min(250, clients - i) }, (_, j) => session(port, `u${i + j}`, undefined)))))
  }
  const positions = peers.map((p) => p.position)
  const joined = positions.filter((p) => p !== undefined).length
  await stop(first.child)
  for (const p of peers) p.socket.destroy()
  const second = await startServer(port)
  const t0 = performance.now()
  const answers = await Promise.race([
    Promise.all(positions.map(async (position, i) => {
      await sleep(Math.random() * 1000)
      const peer = await session(port, `u${i}`, position)
      return peer
    })),
    sleep(30_000).then(() => undefined)
  ])
  const elapsed = performance.now() - t0
  const done = answers?.filter((p) => p.answered) ?? []
  const kinds = new Map<string, number>()
  for (const p of done) kinds.set(p.answer!, (kinds.get(p.answer!) ?? 0) + 1)
  for (const p of answers ?? []) p.socket.destroy()
  await stop(second.child)
  console.log(`\n# Reconnect storm with resume (${new Date().toISOString()})\n`)
  console.log("| clients | logged in before | answered after the restart | answers | time to the last answer | goal |")
  console.log("|---|---|---|---|---|---|")
  console.log(
    `| ${clients.toLocaleString()} | ${joined.toLocaleString()} | ${done.length.toLocaleString()} | ${
      Array.from(kinds).map(([k, n]) => `${k} x ${n.toLocaleString()}`).join(", ")
    } | ${(elapsed / 1000).toFixed(2)} s (reconnects spread over the first 1 s) | < 5 s |`
  )
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
