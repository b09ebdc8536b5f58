/**
 * Load generator using only node:net, speaking the echo contract (u32 BE
 * length + payload; answers `PING` with `PONG`). Every loop is bounded in
 * count and time. Prints one JSON line of results.
 *
 *   idle       --conns C --hold MS             hold C connections answering pings; report survivors
 *   throughput --conns C --depth D --size B --duration MS [--warmup MS]   echo frames, D in flight per connection
 *   latency    --size B --count N               ping-pong one frame at a time; p50/p90/p99/max in us
 *   kick       --conns C --wait MS              connect C silent peers; report how long until each is closed
 *   typed      --conns C --depth D [--msgpack]  Tether Request messages (JSON lines, or u32 BE + MessagePack)
 */
import { Packr } from "msgpackr"
import * as net from "node:net"

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const mode = process.argv[2]
const port = arg("port", 0)
const PONG = Buffer.from([0, 0, 0, 4, 0x50, 0x4f, 0x4e, 0x47])

const frame = (size: number) => {
  const out = Buffer.alloc(4 + size, 0x61)
  out.writeUInt32BE(size)
  return out
}

/**
 * Calls onFrames with the number of complete data frames in each chunk (so
 * the caller can answer a whole chunk with one write); answers PINGs.
 */
const reader = (socket: net.Socket, onFrames: (count: number) => void, answerPings = true) => {
  let pending: Buffer | undefined
  socket.on("data", (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk
    let at = 0
    let frames = 0
    while (buf.length - at >= 4) {
      const length = buf.readUInt32BE(at)
      if (buf.length - at - 4 < length) break
      const isPing = length === 4 && buf[at + 4] === 0x50 && buf[at + 5] === 0x49
      if (isPing) {
        if (answerPings) socket.write(PONG)
      } else frames++
      at += 4 + length
    }
    pending = at < buf.length ? buf.subarray(at) : undefined
    if (frames > 0) onFrames(frames)
  })
}

// `count` copies of `payload`, built once per count: the load generator shares
// a core budget with nothing else and must not be the bottleneck it measures.
const repeatedCache = new WeakMap<Buffer, Map<number, Buffer>>()
const repeated = (payload: Buffer, count: number): Buffer => {
  if (count === 1) return payload
  let byCount = repeatedCache.get(payload)
  if (byCount === undefined) repeatedCache.set(payload, byCount = new Map())
  let out = byCount.get(count)
  if (out === undefined) byCount.set(count, out = Buffer.concat(Array.from({ length: count }, () => payload)))
  return out
}

const connect = (onOpen?: (socket: net.Socket) => void): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true })
    socket.once("connect", () => {
      onOpen?.(socket)
      resolve(socket)
    })
    socket.once("error", reject)
  })

const connectMany = async (count: number, onOpen?: (socket: net.Socket) => void): Promise<Array<net.Socket>> => {
  const sockets: Array<net.Socket> = []
  for (let i = 0; i < count; i += 200) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => connect(onOpen)))))
  }
  return sockets
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const main = async () => {
  switch (mode) {
    case "idle": {
      const conns = arg("conns", 1000)
      let alive = 0
      // Answer pings from the moment each connection opens, not after the ramp.
      const sockets = await connectMany(conns, (s) => {
        alive++
        s.on("error", () => {})
        s.on("close", () => alive--)
        reader(s, () => {})
      })
      // Tell the caller when all are connected, then hold.
      console.log(JSON.stringify({ event: "connected", conns: sockets.length }))
      await sleep(arg("hold", 5000))
      console.log(JSON.stringify({ mode, conns, alive }))
      for (const s of sockets) s.destroy()
      break
    }
    case "throughput": {
      const conns = arg("conns", 50)
      const depth = arg("depth", 32)
      const size = arg("size", 64)
      const duration = arg("duration", 3000)
      const payload = frame(size)
      const sockets = await connectMany(conns)
      let frames = 0
      let running = true
      for (const s of sockets) {
        s.on("error", () => {})
        reader(s, (n) => {
          frames += n
          if (running) s.write(repeated(payload, n))
        })
        s.write(Buffer.concat(Array.from({ length: depth }, () => payload)))
      }
      await sleep(arg("warmup", 500))
      // The measured window, announced so the caller can read the server's
      // CPU time over exactly these frames (see bench/run.ts).
      console.log(JSON.stringify({ event: "window", phase: "start" }))
      const start = frames
      const t0 = process.hrtime.bigint()
      await sleep(duration)
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9
      const count = frames - start
      console.log(JSON.stringify({ event: "window", phase: "end" }))
      running = false
      console.log(JSON.stringify({ mode, conns, depth, size, frames: count, elapsed, framesPerSec: count / elapsed, mbPerSec: (count * size) / elapsed / 1e6 }))
      for (const s of sockets) s.destroy()
      break
    }
    case "typed": {
      // Request/response messages, `depth` in flight per connection; counts answers.
      const conns = arg("conns", 50)
      const depth = arg("depth", 32)
      const duration = arg("duration", 3000)
      const msgpack = process.argv.includes("--msgpack")
      const body = "x".repeat(Math.max(1, arg("size", 64) - 36))
      const request = { _tag: "Request", id: 1, body }
      const bytes = msgpack
        ? (() => {
          const packed = new Packr({ useRecords: false }).pack(request)
          const header = Buffer.alloc(4)
          header.writeUInt32BE(packed.length)
          return Buffer.concat([header, packed])
        })()
        : Buffer.from(JSON.stringify(request) + "\n")
      const sockets = await connectMany(conns)
      let answers = 0
      let running = true
      for (const s of sockets) {
        s.on("error", () => {})
        const onAnswers = (n: number) => {
          answers += n
          if (running) s.write(repeated(bytes, n))
        }
        if (msgpack) reader(s, onAnswers)
        else {
          s.on("data", (chunk: Buffer) => {
            let n = 0
            for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) n++
            if (n > 0) onAnswers(n)
          })
        }
        s.write(Buffer.concat(Array.from({ length: depth }, () => bytes)))
      }
      await sleep(500)
      const start = answers
      const t0 = process.hrtime.bigint()
      await sleep(duration)
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9
      running = false
      console.log(JSON.stringify({ mode, conns, depth, messagesPerSec: (answers - start) / elapsed }))
      for (const s of sockets) s.destroy()
      break
    }
    case "latency": {
      const size = arg("size", 64)
      const count = arg("count", 20000)
      const payload = frame(size)
      const socket = await connect()
      const samples: Array<number> = []
      let sentAt = 0n
      await new Promise<void>((done) => {
        reader(socket, () => {
          // One frame in flight: each chunk holds exactly the echo of the last one.
          samples.push(Number(process.hrtime.bigint() - sentAt) / 1000)
          if (samples.length >= count) return done()
          sentAt = process.hrtime.bigint()
          socket.write(payload)
        })
        sentAt = process.hrtime.bigint()
        socket.write(payload)
      })
      const sorted = samples.slice(1000).sort((a, b) => a - b) // drop warm-up
      const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
      console.log(JSON.stringify({ mode, size, count: sorted.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1) }))
      socket.destroy()
      break
    }
    case "kick": {
      const conns = arg("conns", 100)
      const wait = arg("wait", 5000)
      const sockets = await connectMany(conns)
      const t0 = Date.now()
      const closedAfter: Array<number> = []
      for (const s of sockets) {
        s.on("error", () => {})
        reader(s, () => {}, false)
        s.on("close", () => closedAfter.push(Date.now() - t0))
      }
      const until = Date.now() + wait
      while (closedAfter.length < conns && Date.now() < until) await sleep(10)
      closedAfter.sort((a, b) => a - b)
      console.log(JSON.stringify({ mode, conns, closed: closedAfter.length, min: closedAfter[0], median: closedAfter[Math.floor(closedAfter.length / 2)], max: closedAfter.at(-1) }))
      for (const s of sockets) s.destroy()
      break
    }
    default:
      console.error("usage: loadgen idle|throughput|latency|kick --port N [...]")
      process.exit(2)
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(String(error))
  process.exit(1)
})
