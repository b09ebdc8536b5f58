/**
 * WebSocket load generator (the `ws` library), speaking Tether's JSON
 * messages, one per WebSocket message; answers Tether `Ping` with `Pong`
 * (and `ws` answers protocol pings by itself). Every loop is bounded in
 * count and time. Prints one JSON line of results.
 *
 *   typed --conns C --depth D --size B --duration MS   Request -> Response, D in flight per connection
 *   idle  --conns C --hold MS                          hold C connections; report survivors
 */
import WebSocket from "ws"

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
const mode = process.argv[2]
const port = arg("port", 0)
const url = `ws://127.0.0.1:${port}/`

const open = () =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

/** Answers Tether pings; calls onOther for every other message. */
const listen = (ws: WebSocket, onOther: (text: string) => void) =>
  ws.on("message", (data) => {
    const text = data.toString()
    if (text.startsWith("{\"_tag\":\"Ping\"")) {
      ws.send(`{"_tag":"Pong","seq":${JSON.parse(text).seq}}`)
    } else onOther(text)
  })

const main = async () => {
  switch (mode) {
    case "typed": {
      const conns = arg("conns", 50)
      const depth = arg("depth", 32)
      const duration = Math.min(arg("duration", 2000), 10_000)
      const body = "a".repeat(Math.max(0, arg("size", 64) - 2))
      const sockets = await Promise.all(Array.from({ length: conns }, open))
      let received = 0
      let running = true
      let id = 0
      const request = () => `{"_tag":"Request","id":${id = (id + 1) >>> 0},"body":"${body}"}`
      for (const ws of sockets) {
        listen(ws, () => {
          received++
          if (running) ws.send(request())
        })
        for (let i = 0; i < depth; i++) ws.send(request())
      }
      const start = Date.now()
      await new Promise((r) => setTimeout(r, duration))
      running = false
      const elapsed = (Date.now() - start) / 1000
      console.log(JSON.stringify({ mode, conns, depth, received, messagesPerSec: received / elapsed }))
      for (const ws of sockets) ws.terminate()
      break
    }
    case "idle": {
      const conns = Math.min(arg("conns", 2000), 20_000)
      const hold = Math.min(arg("hold", 5000), 30_000)
      const sockets: Array<WebSocket> = []
      let closed = 0
      for (let i = 0; i < conns; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, conns - i) }, open))
        for (const ws of batch) {
          listen(ws, () => {})
          ws.on("close", () => closed++)
          sockets.push(ws)
        }
      }
      console.log(JSON.stringify({ event: "connected", conns }))
      await new Promise((r) => setTimeout(r, hold))
      console.log(JSON.stringify({ mode, conns, alive: conns - closed }))
      for (const ws of sockets) ws.terminate()
      break
    }
    default:
      throw new Error(`unknown mode ${mode}`)
  }
  process.exit(0)
}

setTimeout(() => process.exit(2), 60_000).unref()
void main()
