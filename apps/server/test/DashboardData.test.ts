/**
 * The dashboard's rows, fed by real traffic: per-room activity from the chat
 * server's room counters (in-process, real loopback sockets), and in cluster
 * mode one row per node from the summaries each node publishes to Redis
 * (`REDIS_URL`, default the machine's Redis; a key prefix of the test's own,
 * deleted after).
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Dashboard from "@tether/node/Dashboard"
import * as Message from "@tether/protocol/Message"
import * as Redis from "@tether/redis/Redis"
import * as RedisNodes from "@tether/redis/RedisNodes"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { peer, startChat } from "./fixtures/ChatHttp.js"
import * as C from "./fixtures/Cluster.js"

type Peer = Awaited<ReturnType<typeof peer>>

const samples = async (url: string): Promise<Dashboard.Samples> => {
  const response = await fetch(`${url}/dashboard/samples.json`)
  assert.strictEqual(response.status, 200)
  return (await response.json()) as Dashboard.Samples
}

/** Polls `check` every 50 ms until it holds (`timeoutMs` at most). */
const until = async (check: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const login = async (port: number, user: string) => {
  const p = await peer(port)
  p.send({ _tag: "Login", user, password: "pw" })
  await p.waitFor(`${user} logged in`, (ms) => ms.some((m) => m._tag === "LoginResult"))
  return p
}

const saidIn = (p: Peer, room: string) => p.messages().filter((m) => m._tag === "Said" && m.room === room).length

const joinRoom = async (p: Peer, room: string) => {
  p.send({ _tag: "Join", room })
  await p.waitFor(`joined ${room}`, (ms) => ms.some((m) => m._tag === "RoomJoined" && m.room === room))
}

/** alice and bob in #busy, bob also in #quiet (and both in the lobby). */
const busyAndQuiet = async (port: number) => {
  const alice = await login(port, "alice")
  const bob = await login(port, "bob")
  await joinRoom(alice, "#busy")
  await joinRoom(bob, "#busy")
  await joinRoom(bob, "#quiet")
  return { alice, bob }
}

describe("dashboard: per-room activity", () => {
  it.scopedLive("each room counts the lines it delivers: the right room moves, members per room, bounded, a window per read", () =>
    Effect.gen(function*() {
      // The sampler stays idle (1 h): this test is the counters' one reader.
      const { port, running } = yield* startChat({ sampler: { interval: "1 hour" } })
      yield* Effect.promise(async () => {
        const { alice, bob } = await busyAndQuiet(port)
        running.roomActivity!(10) // a window from here
        for (let id = 1; id <= 5; id++) alice.send({ _tag: "Say", id, text: `a ${id}`, room: "#busy" })
        for (let id = 1; id <= 2; id++) bob.send({ _tag: "Say", id, text: `q ${id}`, room: "#quiet" })
        await bob.waitFor("5 + 2 lines", () => saidIn(bob, "#busy") === 5 && saidIn(bob, "#quiet") === 2)
        const look = running.roomActivity!(2)
        assert.strictEqual(look.rooms, 3, "#busy, #quiet and the lobby")
        assert.deepStrictEqual(look.busiest, [
          { room: "#busy", members: 2, lines: 5 },
          { room: "#quiet", members: 1, lines: 2 }
        ])
        alice.send({ _tag: "Say", id: 6, text: "a 6", room: "#busy" })
        await bob.waitFor("6 lines in #busy", () => saidIn(bob, "#busy") === 6)
        // A new window: one line since; quiet rooms rank by members (the lobby has 2, #quiet 1).
        assert.deepStrictEqual(running.roomActivity!(2).busiest, [
          { room: "#busy", members: 2, lines: 1 },
          { room: Message.defaultRoom, members: 2, lines: 0 }
        ])
        alice.socket.destroy()
        bob.socket.destroy()
      })
    }), 20_000)

  it.scopedLive("/dashboard/samples.json: lines per second of the busiest rooms, while the traffic flows", () =>
    Effect.gen(function*() {
      const { port, url } = yield* startChat({ sampler: { interval: "300 millis", roomLimit: 2 } })
      yield* Effect.promise(async () => {
        const { alice, bob } = await busyAndQuiet(port)
        // ~1.5 s of traffic in #busy only, while the sampler samples every 300 ms.
        let seen: Dashboard.Samples | undefined
        for (let id = 1; id <= 30; id++) {
          alice.send({ _tag: "Say", id, text: `line ${id}`, room: "#busy" })
          await new Promise((r) => setTimeout(r, 50))
          if (id % 5 === 0 && seen === undefined) {
            const s = await samples(url)
            if (s.rooms.some((r) => r.room === "#busy" && r.messagesPerSecond > 0)) seen = s
          }
        }
        await until(async () => {
          if (seen !== undefined) return true
          const s = await samples(url)
          if (s.rooms.some((r) => r.room === "#busy" && r.messagesPerSecond > 0)) seen = s
          return seen !== undefined
        }, 3000, "a sample with #busy's lines")
        assert.strictEqual(seen!.roomCount, 3)
        assert.strictEqual(seen!.rooms.length, 2, "bounded by roomLimit")
        assert.strictEqual(seen!.rooms[0]!.room, "#busy", "busiest first")
        assert.strictEqual(seen!.rooms[0]!.members, 2)
        // Nothing was said elsewhere: the other row (the lobby, 2 members) did not move.
        assert.deepStrictEqual(seen!.rooms[1], { room: Message.defaultRoom, members: 2, messagesPerSecond: 0 })
        alice.socket.destroy()
        bob.socket.destroy()
      })
    }), 20_000)
})

describe("dashboard: nodes of a cluster", () => {
  it.live("two nodes each publish a summary; each node's dashboard lists both; a node that stops publishing goes after the TTL", () =>
    Effect.gen(function*() {
      const keyPrefix = C.prefix()
      const scope = yield* Scope.make()
      const peers: Array<Peer> = []
      yield* Effect.gen(function*() {
        const options = { prefix: keyPrefix, sampleEvery: "200 millis", publishEvery: "200 millis" } as const
        const a = yield* Scope.extend(C.nodeWithDashboard({ nodeId: "na", ...options }), scope)
        const bScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const b = yield* Scope.extend(C.nodeWithDashboard({ nodeId: "nb", ...options }), bScope)
        yield* Effect.promise(async () => {
          peers.push(await C.login(a.port, "ann"), await C.login(b.port, "ben"), await C.login(b.port, "bea"))
          const both = (s: Dashboard.Samples) =>
            s.nodes.length === 2 && s.nodes[0]!.node === "na" && s.nodes[0]!.connections === 1 &&
            s.nodes[1]!.node === "nb" && s.nodes[1]!.connections === 2
          for (const url of [a.url, b.url]) {
            await until(async () => both(await samples(url)), 5000, `both nodes' rows on ${url}`)
          }
          const row = (await samples(a.url)).nodes[1]!
          assert.isAtMost(row.lastSeenAgoMs, 2000)
        })
        // A node that stops cleanly removes its summary at once (its peers gone first: no drain to wait for).
        peers[1]!.socket.destroy()
        peers[2]!.socket.destroy()
        yield* Scope.close(bScope, Exit.void)
        yield* Effect.promise(() =>
          until(async () => (await samples(a.url)).nodes.map((n) => n.node).join() === "na", 3000, "nb gone")
        )
        // A node that dies after publishing (its summary written, never refreshed) goes once the TTL ends.
        yield* Effect.scoped(Effect.gen(function*() {
          const redis = yield* Redis.make({ url: C.url })
          const k = RedisNodes.keys(keyPrefix)
          const ghost = { node: "ghost", connections: 7, messagesInPerSecond: 0, messagesOutPerSecond: 0, at: Date.now() }
          yield* redis.command(["SET", k.summary("ghost"), JSON.stringify(ghost), "PX", "800"])
          yield* redis.command(["ZADD", k.index, String(Date.now()), "ghost"])
          yield* Effect.promise(() =>
            until(async () => (await samples(a.url)).nodes.some((n) => n.node === "ghost" && n.connections === 7), 3000, "ghost listed")
          )
          yield* Effect.promise(() =>
            until(async () => (await samples(a.url)).nodes.map((n) => n.node).join() === "na", 3000, "ghost gone after its TTL")
          )
          // The reader also dropped it from the index: nothing grows with dead nodes.
          assert.isNull(yield* redis.command(["ZSCORE", k.index, "ghost"]))
        }))
      }).pipe(
        Effect.ensuring(Effect.promise(async () => {
          for (const p of peers) p.socket.destroy()
        })),
        Effect.ensuring(Scope.close(scope, Exit.void)),
        Effect.ensuring(Effect.promise(() => C.cleanup(keyPrefix)))
      )
    }), 20_000)
})
