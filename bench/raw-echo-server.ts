/**
 * The baseline: a raw node:net server speaking the echo contract, written for
 * speed. Frames are a u32 big-endian length plus payload (max 1 MiB); every
 * frame is echoed unchanged; with --heartbeat-interval MS a `PING` frame goes
 * to each peer every interval, a `PONG` counts as life and is not echoed, and
 * a peer silent for --heartbeat-timeout MS is destroyed.
 *
 * node bench/build/raw-echo-server.js [--port N] [--heartbeat-interval MS] [--heartbeat-timeout MS]
 */
import * as net from "node:net"

const arg = (name: string): number | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? undefined : Number(process.argv[at + 1])
}
const port = arg("port") ?? 0
const interval = arg("heartbeat-interval")
const timeout = arg("heartbeat-timeout") ?? (interval ? interval * 3 : undefined)
const MAX = 1024 * 1024
const PING = Buffer.from([0, 0, 0, 4, 0x50, 0x49, 0x4e, 0x47])

interface Peer {
  socket: net.Socket
  lastHeard: number
}
const peers = new Set<Peer>()

const server = net.createServer({ noDelay: true }, (socket) => {
  const peer: Peer = { socket, lastHeard: Date.now() }
  peers.add(peer)
  let pending: Buffer | undefined
  socket.on("data", (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk
    let at = 0
    let out: Array<Buffer> | undefined
    while (buf.length - at >= 4) {
      const length = buf.readUInt32BE(at)
      if (length > MAX) {
        socket.destroy()
        return
      }
      if (buf.length - at - 4 < length) break
      peer.lastHeard = Date.now()
      const isPong = length === 4 && buf[at + 4] === 0x50 && buf[at + 5] === 0x4f && buf[at + 6] === 0x4e && buf[at + 7] === 0x47
      if (!isPong) (out ??= []).push(buf.subarray(at, at + 4 + length))
      at += 4 + length
    }
    pending = at < buf.length ? buf.subarray(at) : undefined
    if (out === undefined) return
    if (out.length === 1) socket.write(out[0]!)
    else if (out.some((frame) => frame.length >= 4096)) {
      // Large frames by reference, in one gathered write (writev), as Tether does.
      socket.cork()
      for (const frame of out) socket.write(frame)
      socket.uncork()
    } else socket.write(Buffer.concat(out))
  })
  socket.on("error", () => {})
  socket.on("close", () => peers.delete(peer))
})

if (interval !== undefined) {
  // One timer for all peers, as a careful raw server would do.
  setInterval(() => {
    const now = Date.now()
    for (const peer of peers) {
      if (timeout !== undefined && now - peer.lastHeard >= timeout) peer.socket.destroy()
      else peer.socket.write(PING)
    }
  }, interval)
}

server.listen({ host: "127.0.0.1", port, backlog: 4096 }, () => {
  const address = server.address() as net.AddressInfo
  console.log(`listening on 127.0.0.1:${address.port}`)
})
process.on("SIGTERM", () => process.exit(0))
process.on("SIGINT", () => process.exit(0))
