/**
 * The cluster bench's baseline: a chat relay written by hand for speed, with
 * no Tether in it, speaking just enough of the chat protocol for
 * bench/cluster.ts (u32 length + JSON frames; Login is taken as is, Join
 * answers RoomJoined, Say answers Ack and sends Said to the room's members).
 * Alone it delivers from memory; with --redis it does what a careful
 * hand-written relay on Redis does: one atomic Lua script per line (offset
 * HINCRBY, XADD with MAXLEN, PUBLISH with the node's id), its own members
 * served from the script's answer, the other nodes' lines from pub/sub
 * (its own echo skipped). No batching, no presence, no resume: the floor of
 * what the Redis hop costs on this machine.
 *
 * node bench/build/raw-relay.js [--redis URL --prefix P --node-id ID]
 */
import { createClient } from "@redis/client"
import * as net from "node:net"

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? undefined : process.argv[at + 1]
}
const url = arg("redis")
const prefix = arg("prefix") ?? "raw:"
const nodeId = arg("node-id") ?? String(process.pid)

const script = `
local o = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, o .. '-0', 'p', ARGV[2])
redis.call('PUBLISH', ARGV[1], ARGV[3] .. ':' .. o .. ':' .. ARGV[2])
return o`

const frame = (message: object) => {
  const body = Buffer.from(JSON.stringify(message))
  const out = Buffer.allocUnsafe(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  body.copy(out, 4)
  return out
}

const rooms = new Map<string, Set<net.Socket>>()
const deliver = (room: string, said: object) => {
  const members = rooms.get(room)
  if (members === undefined) return
  const bytes = frame(said)
  for (const member of members) member.write(bytes)
}

const main = async () => {
  const commands = url === undefined ? undefined : createClient({ url, RESP: 2 })
  const pubsub = url === undefined ? undefined : createClient({ url, RESP: 2 })
  await commands?.connect()
  await pubsub?.connect()
  const sha = commands === undefined ? "" : String(await commands.sendCommand(["SCRIPT", "LOAD", script]))
  const subscribed = new Set<string>()

  const say = (socket: net.Socket, user: string, m: { id: number; room: string; text: string }) => {
    if (commands === undefined) {
      deliver(m.room, { _tag: "Said", room: m.room, user, text: m.text })
      socket.write(frame({ _tag: "Ack", id: m.id }))
      return
    }
    const payload = JSON.stringify({ room: m.room, user, text: m.text })
    const keys = [`${prefix}{${m.room}}:meta`, `${prefix}{${m.room}}:log`]
    ;(commands.sendCommand(["EVALSHA", sha, "2", ...keys, `${prefix}{${m.room}}`, payload, nodeId]) as Promise<number>).then(
      (offset) => {
        deliver(m.room, { _tag: "Said", room: m.room, user, text: m.text, offset })
        socket.write(frame({ _tag: "Ack", id: m.id }))
      },
      () => socket.write(frame({ _tag: "SayRefused", id: m.id }))
    )
  }

  const join = async (socket: net.Socket, room: string) => {
    const members = rooms.get(room) ?? new Set()
    rooms.set(room, members)
    members.add(socket)
    if (pubsub !== undefined && !subscribed.has(room)) {
      subscribed.add(room)
      await pubsub.subscribe(`${prefix}{${room}}`, (message: string) => {
        const a = message.indexOf(":")
        if (message.slice(0, a) === nodeId) return
        const b = message.indexOf(":", a + 1)
        const line = JSON.parse(message.slice(b + 1)) as { room: string; user: string; text: string }
        deliver(room, { _tag: "Said", ...line, offset: Number(message.slice(a + 1, b)) })
      })
    }
    socket.write(frame({ _tag: "RoomJoined", room }))
  }

  const server = net.createServer({ noDelay: true }, (socket) => {
    let user = "?"
    let pending: Buffer | undefined
    socket.on("data", (chunk: Buffer) => {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk
      let at = 0
      while (buf.length - at >= 4) {
        const length = buf.readUInt32BE(at)
        if (length > 1024 * 1024) return socket.destroy()
        if (buf.length - at - 4 < length) break
        const m = JSON.parse(buf.toString("utf8", at + 4, at + 4 + length))
        at += 4 + length
        if (m._tag === "Login") user = m.user
        else if (m._tag === "Join") void join(socket, m.room)
        else if (m._tag === "Say") say(socket, user, m)
      }
      pending = at < buf.length ? buf.subarray(at) : undefined
    })
    socket.on("error", () => undefined)
    socket.on("close", () => {
      for (const members of rooms.values()) members.delete(socket)
    })
  })
  server.listen(Number(arg("port") ?? 0), "127.0.0.1", () => {
    const address = server.address() as net.AddressInfo
    console.log(`listening on 127.0.0.1:${address.port}`)
  })
  process.on("SIGTERM", () => {
    server.close()
    void Promise.allSettled([commands?.quit(), pubsub?.quit()]).then(() => process.exit(0))
  })
}

void main()
