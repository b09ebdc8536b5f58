/**
 * Cluster mode as real processes: `tether-server --redis` nodes, raw TCP
 * clients on different nodes, and the faults: Redis killed and restarted
 * mid-chat (a redis-server of the test's own, append-only so an Ack means
 * durable), a node SIGKILLed.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as ChatHttp from "./fixtures/ChatHttp.js"
import * as C from "./fixtures/Cluster.js"
import * as P from "./fixtures/Processes.js"

afterEach(() => P.killAll())

const startNode = async (url: string, keyPrefix: string, nodeId: string) => {
  const { port, server } = await P.startServer([
    "--redis", url, "--redis-prefix", keyPrefix, "--node-id", nodeId, "--http-port", "0", "--drain-timeout", "1s"
  ])
  const http = (await server.waitFor(/(http:\/\/[\d.]+:\d+)\/dashboard/))[1]!
  return { port, server, http }
}

const healthz = async (http: string) => (await fetch(`${http}/healthz`)).status

/** Says `text` as `id` until it is acknowledged, counting the refusals on the way. */
const sayUntilAcked = async (peer: C.Peer, id: number, text: string, room: string, timeoutMs = 15_000) => {
  const until = Date.now() + timeoutMs
  for (;;) {
    const before = peer.messages().length
    C.say(peer, id, text, room)
    await peer.waitFor(`answer to ${id}`, (ms) =>
      ms.slice(before).some((m) => (m._tag === "Ack" || m._tag === "SayRefused") && m.id === id))
    const answer = peer.messages().slice(before).find((m) => (m._tag === "Ack" || m._tag === "SayRefused") && m.id === id)!
    if (answer._tag === "Ack") return answer
    assert.strictEqual(answer._tag === "SayRefused" ? answer.code : "", "Unavailable")
    if (Date.now() > until) throw new Error(`${id} never acknowledged`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe("Cluster (processes)", () => {
  it("a Redis that cannot be reached at start: a clear message and exit 3; a bad --node-id or --redis-prefix, or --redis outside chat: exit 2", async () => {
    P.assertBuilt()
    const port = await C.freePort()
    const server = P.start(P.serverBin, ["--port", "0", "--redis", `redis://user:secret@127.0.0.1:${port}`])
    assert.strictEqual(await server.exited(20_000), 3)
    assert.match(server.output(), /cannot reach Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:\d+/)
    assert.notMatch(server.output(), /secret/)
    const badId = P.start(P.serverBin, ["--port", "0", "--redis", C.url, "--node-id", "a b"])
    assert.strictEqual(await badId.exited(15_000), 2)
    // A brace in the prefix would become every key's hash tag: all rooms in one Redis Cluster slot.
    const badPrefix = P.start(P.serverBin, ["--port", "0", "--redis", C.url, "--redis-prefix", "{app}:"])
    assert.strictEqual(await badPrefix.exited(15_000), 2)
    assert.match(badPrefix.output(), /--redis-prefix: .*no braces/)
    const echo = P.start(P.serverBin, ["--port", "0", "--mode", "echo", "--redis", C.url])
    assert.strictEqual(await echo.exited(15_000), 2)
  }, 60_000)

  it("two tether-server --redis: Redis killed and restarted mid-chat: Say refused Unavailable meanwhile, sessions stay, nothing acknowledged lost, no duplicates", async () => {
    P.assertBuilt()
    const dir = mkdtempSync(path.join(tmpdir(), "tether-redis-"))
    const redis = await C.redisServer({ appendOnlyDir: dir })
    try {
      const keyPrefix = C.prefix()
      const [a, b] = [await startNode(redis.url, keyPrefix, "pa"), await startNode(redis.url, keyPrefix, "pb")]
      assert.strictEqual(await healthz(a.http), 200)
      const alice = await C.login(a.port, "alice")
      const bob = await C.login(b.port, "bob")
      for (const peer of [alice, bob]) {
        peer.send({ _tag: "Join", room: "#a" })
        await C.joined(peer, "#a")
      }
      for (let i = 1; i <= 3; i++) await sayUntilAcked(alice, i, `line ${i}`, "#a")

      await redis.stop()
      const before = alice.messages().length
      C.say(alice, 4, "line 4", "#a")
      await alice.waitFor("SayRefused", (ms) => ms.slice(before).some((m) => m._tag === "SayRefused" && m.id === 4))
      const refused = alice.messages().slice(before).find((m) => m._tag === "SayRefused")
      assert.strictEqual(refused?._tag === "SayRefused" ? refused.code : "", "Unavailable")
      assert.strictEqual(await healthz(a.http), 503)

      await redis.start()
      // The client retries as its outbox does: the same id, until acknowledged.
      const ack = await sayUntilAcked(alice, 4, "line 4", "#a")
      assert.strictEqual(ack.offset, 4)
      await sayUntilAcked(bob, 1, "bob back", "#a")
      const expected = ["1 alice: line 1", "2 alice: line 2", "3 alice: line 3", "4 alice: line 4", "5 bob: bob back"]
      for (const peer of [alice, bob]) {
        await peer.waitFor("the transcript", () => C.transcript(peer, "#a").length >= 5)
        assert.deepStrictEqual(C.transcript(peer, "#a"), expected)
      }
      // Never disconnected.
      assert.isFalse(alice.socket.destroyed || bob.socket.destroyed)
      const until = Date.now() + 10_000
      while ((await healthz(a.http)) !== 200) {
        if (Date.now() > until) throw new Error("/healthz did not become ready again")
        await new Promise((r) => setTimeout(r, 100))
      }
      // Redis's round trips and the outage's errors are on /metrics.
      const metrics = await ChatHttp.scrape(a.http)
      assert.isAbove(metrics.value("tether_redis_round_trips_total", { connection: "command" }), 4)
      const errors = metrics.families.filter((f) => f.name === "tether_redis_errors_total").flatMap((f) => f.metrics)
      assert.isAbove(errors.reduce((sum, m) => sum + Number((m as { value?: string }).value ?? 0), 0), 0)
      alice.socket.destroy()
      bob.socket.destroy()
    } finally {
      P.killAll()
      await redis.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("three nodes, one SIGKILLed: its user is announced left (node lost) once on each other node within the bound; its client resumes on another with nothing lost", async () => {
    P.assertBuilt()
    const keyPrefix = C.prefix()
    try {
      const [a, b, c] = [
        await startNode(C.url, keyPrefix, "ka"),
        await startNode(C.url, keyPrefix, "kb"),
        await startNode(C.url, keyPrefix, "kc")
      ]
      const alice = await C.login(a.port, "alice")
      const bob = await C.login(b.port, "bob")
      const carol = await C.login(c.port, "carol")
      for (const peer of [alice, bob, carol]) {
        peer.send({ _tag: "Join", room: "#a" })
        await C.joined(peer, "#a")
      }
      await sayUntilAcked(alice, 1, "hello", "#a")
      await alice.waitFor("hello", () => C.transcript(alice, "#a").length === 1)
      const last = alice.messages().find((m) => m._tag === "Said")
      if (last?._tag !== "Said") throw new Error("no line")

      const killed = Date.now()
      process.kill(a.server.proc.pid!, "SIGKILL")
      await alice.closed
      await sayUntilAcked(bob, 1, "while alice was away", "#a")
      // Bound: nodeTtl 6 s + sweepInterval 2 s + the sweep; 12 s with a margin for a loaded machine.
      // One node sweeps; the other hears it through the changes channel.
      const nodeLost = (peer: C.Peer) =>
        peer.messages().filter((m) => m._tag === "Left" && m.user === "alice" && m.reason === "node lost" && m.room === "#a").length
      await P.eventually(() => nodeLost(bob) > 0 && nodeLost(carol) > 0, 15_000, "alice left: node lost, on b and c")
      const bound = Date.now() - killed
      assert.isBelow(bound, 12_000)
      await new Promise((r) => setTimeout(r, 2_500)) // another sweep or two: still once
      assert.strictEqual(nodeLost(bob), 1)
      assert.strictEqual(nodeLost(carol), 1)
      // alice moves to the other node (her name is free once her node is swept) and resumes.
      let back: C.Peer | undefined
      const until = Date.now() + 10_000
      while (back === undefined || C.status(back) !== 0) {
        if (Date.now() > until) throw new Error("alice could not log in on the other node")
        back?.socket.destroy()
        back = await C.login(b.port, "alice", [{ room: "#a", epoch: last.epoch!, offset: last.offset! }])
      }
      const resumed = back
      await resumed.waitFor("Recovered", (ms) => ms.some((m) => m._tag === "Recovered"))
      await resumed.waitFor("the missed line", () => C.transcript(resumed, "#a").length === 1)
      assert.deepStrictEqual(C.transcript(resumed, "#a"), ["2 bob: while alice was away"])
      resumed.socket.destroy()
      bob.socket.destroy()
      carol.socket.destroy()
    } finally {
      P.killAll()
      await C.cleanup(keyPrefix)
    }
  }, 60_000)
})
