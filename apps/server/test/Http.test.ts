/**
 * tether-server's HTTP side: /metrics moves as real chat traffic flows
 * (in-process, real loopback sockets), and the executable's --http-port.
 */
import { afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Server from "@tether/runtime/Server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import WebSocket from "ws"
import { common, peer, scrape, startChat } from "./fixtures/ChatHttp.js"
import * as P from "./fixtures/Processes.js"

beforeAll(P.assertBuilt)
afterEach(P.killAll)

type Peer = Awaited<ReturnType<typeof peer>>
const tagged = (tag: string) => (messages: ReadonlyArray<{ readonly _tag: string }>) => messages.filter((m) => m._tag === tag)
const loggedIn = (p: Peer, status: number) =>
  p.waitFor(`LoginResult ${status}`, (ms) => ms.some((m) => m._tag === "LoginResult" && m.status === status))

/** Polls /metrics until the active-connections gauge reads `n` (3 s at most). */
const activeReaches = async (url: string, n: number) => {
  let last = -1
  for (const until = Date.now() + 3000; Date.now() < until;) {
    last = (await scrape(url)).value("tether_connections_active")
    if (last === n) return
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.strictEqual(last, n, "tether_connections_active")
}

describe("/metrics with chat traffic", () => {
  it.scopedLive("frames, bytes, connections and login failures move by exactly what the peers did", () =>
    Effect.gen(function*() {
      const { port, url } = yield* startChat({ authenticator: Server.Authenticator.layerUsers({ alice: "pw", bob: "pw" }) })
      yield* Effect.promise(async () => {
        const before = await scrape(url)
        const alice = await peer(port)
        alice.send({ _tag: "Login", user: "alice", password: "pw" })
        await loggedIn(alice, 0)
        const bob = await peer(port)
        bob.send({ _tag: "Login", user: "bob", password: "pw" })
        await loggedIn(bob, 0)
        await alice.waitFor("Joined bob", (ms) => ms.some((m) => m._tag === "Joined" && m.user === "bob"))
        for (let id = 1; id <= 3; id++) alice.send({ _tag: "Say", id, text: `line ${id}` })
        await alice.waitFor("3 Acks", (ms) => tagged("Ack")(ms).length === 3)
        await bob.waitFor("3 Said", (ms) => tagged("Said")(ms).length === 3)
        // Refused logins: a first message that is not a login, a name in use, a wrong password.
        const mallory = await peer(port)
        mallory.send({ _tag: "Who" })
        await loggedIn(mallory, 5)
        const twin = await peer(port)
        twin.send({ _tag: "Login", user: "alice", password: "pw" })
        await loggedIn(twin, 100)
        const eve = await peer(port)
        eve.send({ _tag: "Login", user: "bob", password: "guess" })
        await loggedIn(eve, 5)
        await Promise.all([mallory.closed, twin.closed, eve.closed])

        const peers = [alice, bob, mallory, twin, eve]
        const after = await scrape(url)
        const delta = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
        assert.strictEqual(delta("tether_connections_accepted_total"), 5)
        assert.strictEqual(delta("tether_frames_received_total"), 4 + 1 + 1 + 1 + 1)
        assert.strictEqual(delta("tether_bytes_received_total"), peers.reduce((n, p) => n + p.sent(), 0))
        assert.strictEqual(delta("tether_frames_sent_total"), peers.reduce((n, p) => n + p.messages().length, 0))
        assert.strictEqual(delta("tether_bytes_sent_total"), peers.reduce((n, p) => n + p.received().length, 0))
        assert.strictEqual(delta("tether_login_failures_total", { reason: "not_a_login" }), 1)
        assert.strictEqual(delta("tether_login_failures_total", { reason: "user_in_use" }), 1)
        assert.strictEqual(delta("tether_login_failures_total", { reason: "invalid_credentials" }), 1)
        const active = before.value("tether_connections_active")
        // The gauge moves as each server-side connection ends: poll, do not race the close.
        await activeReaches(url, active + 2)
        alice.socket.end()
        bob.socket.end()
        await Promise.all([alice.closed, bob.closed])
        await activeReaches(url, active)
      })
    }))

  it.scopedLive("a silent peer's heartbeat timeout is counted", () =>
    Effect.gen(function*() {
      const { port, url } = yield* startChat({
        common: { ...common, heartbeatInterval: Duration.millis(100), heartbeatTimeout: Duration.millis(300) }
      })
      yield* Effect.promise(async () => {
        const before = await scrape(url)
        const silent = await peer(port)
        silent.send({ _tag: "Login", user: "silent", password: "pw" })
        await loggedIn(silent, 0)
        const ms = await silent.closed
        assert.isBelow(ms, 3000)
        const after = await scrape(url)
        assert.strictEqual(after.value("tether_heartbeat_timeouts_total") - before.value("tether_heartbeat_timeouts_total"), 1)
      })
    }))
})

describe("the server's lifecycle as /healthz tells it", () => {
  it.live("ready once listening; draining while the TCP drain waits for a handler in flight; gone after it", () =>
    Effect.gen(function*() {
      // A login that takes 1.5 s: the drain waits for it (handlers in flight finish first).
      const slow = Layer.succeed(Server.Authenticator, {
        authenticate: () => Effect.as(Effect.sleep("1500 millis"), true)
      })
      const scope = yield* Scope.make()
      const { port, url } = yield* startChat({ authenticator: slow }).pipe(Scope.extend(scope))
      yield* Effect.promise(async () => {
        const ready = await fetch(`${url}/healthz`)
        assert.strictEqual(ready.status, 200)
        const late = await peer(port)
        late.send({ _tag: "Login", user: "late", password: "pw" })
        await new Promise((r) => setTimeout(r, 100))
      })
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      const during = yield* Effect.promise(async () => {
        await new Promise((r) => setTimeout(r, 300))
        const response = await fetch(`${url}/healthz`)
        return { status: response.status, body: await response.json() }
      })
      assert.deepStrictEqual(during, { status: 503, body: { state: "draining", checks: [] } })
      yield* Fiber.join(closing)
      const gone = yield* Effect.promise(() => fetch(`${url}/healthz`).then(() => "still listening", (e: unknown) => String(e)))
      assert.match(gone, /fetch failed/)
    }))
})

describe("tether-server --http-port", () => {
  it("prints the HTTP address with the listening line, serves /healthz and /metrics, and stops with the drain", async () => {
    const server = P.start(P.serverBin, ["--port", "0", "--http-port", "0", "--log-format", "json"])
    const match = await server.waitFor(/listening on [\d.]+:(\d+), (http:\/\/127\.0\.0\.1:\d+)\/dashboard/, 10_000)
    const url = match[2]!
    const health = await fetch(`${url}/healthz`)
    assert.strictEqual(health.status, 200)
    assert.deepStrictEqual(await health.json(), { state: "ready", checks: [] })
    const chatter = await peer(Number(match[1]))
    chatter.send({ _tag: "Login", user: "carol", password: "pw" })
    await loggedIn(chatter, 0)
    await activeReaches(url, 1)
    assert.match(server.output(), new RegExp(`web chat on ${url}/ \\(WebSocket ${url.replace("http", "ws")}/ws\\)`))
    // A browser's WebSocket joins the same chat as the TCP peer.
    const dave = new WebSocket(`${url.replace("http", "ws")}/ws`)
    const daveGot: Array<{ readonly _tag: string; readonly [k: string]: unknown }> = []
    const daveClosed = new Promise<number>((done) => dave.on("close", (code) => done(code)))
    dave.on("message", (data) => daveGot.push(JSON.parse(data.toString())))
    await new Promise((done) => dave.on("open", done))
    dave.send(JSON.stringify({ _tag: "Login", user: "dave", password: "pw" }))
    await chatter.waitFor("Joined dave", (ms) => ms.some((m) => m._tag === "Joined" && m.user === "dave"))
    chatter.send({ _tag: "Say", id: 1, text: "hi dave" })
    await P.eventually(() => daveGot.some((m) => m._tag === "Said" && m.text === "hi dave"), 5000, "dave hears carol")
    await activeReaches(url, 2)
    const metrics = await scrape(url)
    assert.strictEqual(metrics.value("tether_connections_accepted_total"), 2)
    assert.strictEqual(metrics.families.find((f) => f.name === "target_info")?.metrics[0]?.labels?.service_name, "tether-server")
    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(), 0)
    await chatter.closed
    // The drain says goodbye to the WebSocket peer too, and closes it cleanly.
    assert.strictEqual(await daveClosed, 1000)
    assert.deepStrictEqual(daveGot.at(-1), { _tag: "Bye", reason: "shutting down" })
    const gone = await fetch(`${url}/healthz`).then(() => "still listening", (error: unknown) => String(error))
    assert.match(gone, /fetch failed/)
  })

  it("refuses a bad --http-port with exit 2", async () => {
    const bad = P.start(P.serverBin, ["--http-port", "70000"])
    assert.strictEqual(await bad.exited(), 2)
    assert.match(bad.output(), /--http-port must be 0 to 65535/)
  })
})
