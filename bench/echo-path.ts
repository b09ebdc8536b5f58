/**
 * The JavaScript cost per frame of the echo path, without syscalls: a chunk
 * of 32 x 64 B frames pushed through a Tether Connection over an in-memory
 * transport (frame decoding, the handler, the outbound queue, batch
 * encoding), beside the raw baseline server's data handler on the same
 * chunk. Bounded: a fixed number of chunks per round, 5 rounds.
 *
 *   node bench/build/echo-path.js
 */
import type * as Socket from "@effect/platform/Socket"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Transport from "@tether/runtime/Transport"
import * as Runtime from "effect/Runtime"

const framesPerChunk = 32
const rounds = 5
const chunks = 100_000
const framing = Frame.lengthPrefixed()
const payload = new Uint8Array(64).fill(7)
const chunk = Buffer.from(framing.encodeAll(Array.from({ length: framesPerChunk }, () => payload)) as Uint8Array)
const PING = new TextEncoder().encode("PING")
let written = 0

// Tether: what tether-server --mode echo runs, over a transport that takes
// every write at once, with write buffers as @tether/node allocates them.
let handlers: Transport.Handlers | undefined
const transport: Transport.Transport = {
  remote: "memory",
  start: (h) => {
    handlers = h
  },
  write: (bytes) => {
    written += bytes.length
    return true
  },
  allocate: NodeTether.allocate,
  end: () => {},
  destroy: () => {}
}
const socket = Transport.attach({} as Socket.Socket, transport)
const connection = Connection.unsafeMake<Uint8Array>(socket, {
  framing,
  codec: Codec.bytes,
  dialect: { ...Heartbeat.bytes, ping: () => PING },
  outbound: { overflow: "backpressure" }
}, () => Date.now())
connection.unsafeStart(Runtime.defaultRuntime, (batch) => {
  for (const frame of batch) connection.unsafeSend(frame)
}, (exit) => {
  throw new Error(`the connection ended: ${String(exit)}`)
})

// Raw: the baseline server's data handler (bench/raw-echo-server.ts), writing into the void.
let pending: Buffer | undefined
const rawOnData = (data: Buffer) => {
  const buf = pending ? Buffer.concat([pending, data]) : data
  let at = 0
  let out: Array<Buffer> | undefined
  while (buf.length - at >= 4) {
    const length = buf.readUInt32BE(at)
    if (buf.length - at - 4 < length) break
    const isPong = length === 4 && buf[at + 4] === 0x50 && buf[at + 5] === 0x4f && buf[at + 6] === 0x4e && buf[at + 7] === 0x47
    if (!isPong) (out ??= []).push(buf.subarray(at, at + 4 + length))
    at += 4 + length
  }
  pending = at < buf.length ? buf.subarray(at) : undefined
  if (out) written += (out.length === 1 ? out[0]! : Buffer.concat(out)).length
}

// Each chunk is followed by a microtask turn, as after a data callback.
// Timed in CPU time of this process (process.cpuUsage), not wall time: on a
// busy machine, time spent descheduled is not the path's cost.
const measure = async (push: () => void): Promise<number> => {
  for (let i = 0; i < chunks / 10; i++) {
    push()
    await null
  }
  const start = process.cpuUsage()
  for (let i = 0; i < chunks; i++) {
    push()
    await null
  }
  const used = process.cpuUsage(start)
  return ((used.user + used.system) * 1000) / chunks / framesPerChunk
}

const main = async () => {
  const rows: Array<[number, number]> = []
  for (let round = 0; round < rounds; round++) {
    rows.push([await measure(() => rawOnData(chunk)), await measure(() => handlers!.onData(chunk))])
  }
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(rounds / 2)]!
  const raw = median(rows.map((r) => r[0]))
  const tether = median(rows.map((r) => r[1]))
  const expected = 2 * (chunks + chunks / 10) * rounds * chunk.length
  if (written !== expected) throw new Error(`echoed ${written} bytes, expected ${expected}`)
  console.log(`# JavaScript per 64 B frame of the echo path (no syscalls), CPU time, median of ${rounds} rounds\n`)
  console.log("| path | ns / frame |\n|---|---|")
  console.log(`| raw node:net data handler | ${raw.toFixed(1)} |`)
  console.log(`| Tether Connection over a transport (decode, handler, queue, encode) | ${tether.toFixed(1)} |`)
}

main()
