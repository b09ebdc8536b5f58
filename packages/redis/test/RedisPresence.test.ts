import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { presenceNode } from "./fixtures/nodes.js"
import * as Proxy from "./fixtures/Proxy.js"
import * as Fixtures from "./fixtures/redis.js"
import * as RedisServer from "@tether/testing/RedisServer"

// Short TTLs: a node is dead 600 ms after its last refresh, and swept within
// 150 ms more: the bound is 750 ms, checked with a margin for a loaded machine.
// The last refresh was at most 150 ms before the cut, so nothing can be
// announced before 450 ms: an announcement earlier than that was not the TTL.
const fast = { nodeTtl: "600 millis", refreshInterval: "150 millis", sweepInterval: "150 millis" } as const
const BOUND_MS = 600 + 150 + 750
const EARLIEST_MS = 600 - 150

describe("RedisPresence", () => {
  it.live("a name held on one node is refused on another; a stale release is a no-op", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const a = yield* presenceNode({ prefix, nodeId: "a" })
      const b = yield* presenceNode({ prefix, nodeId: "b" })
      assert.isTrue(yield* a.claim("alice", "s1"))
      assert.isFalse(yield* b.claim("alice", "s2"))
      assert.isTrue(yield* a.claim("alice", "s1"))
      yield* b.release("alice", "s2")
      assert.isFalse(yield* b.claim("alice", "s2"))
      yield* a.release("alice", "s1")
      assert.isTrue(yield* b.claim("alice", "s2"))
      assert.isFalse(yield* a.claim("alice", "s1"))
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("members lists a room's members on all nodes, sorted, limited", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const a = yield* presenceNode({ prefix, nodeId: "a" })
      const b = yield* presenceNode({ prefix, nodeId: "b" })
      yield* a.join("lobby", "zoe")
      yield* b.join("lobby", "bob")
      yield* b.join("dev", "bob")
      assert.deepStrictEqual(yield* a.members("lobby"), ["bob", "zoe"])
      assert.deepStrictEqual(yield* b.members("lobby", { limit: 1 }), ["bob"])
      yield* b.leave("lobby", "bob")
      assert.deepStrictEqual(yield* a.members("lobby"), ["zoe"])
      assert.deepStrictEqual(yield* a.members("dev"), ["bob"])
      // A node removes only what it holds.
      yield* a.leave("dev", "bob")
      assert.deepStrictEqual(yield* a.members("dev"), ["bob"])
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("announce reaches the other nodes' changes, not the announcing node's own", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const a = yield* presenceNode({ prefix, nodeId: "a" })
      const b = yield* presenceNode({ prefix, nodeId: "b" })
      const c = yield* presenceNode({ prefix, nodeId: "c" })
      const seen = { a: [] as Array<string>, b: [] as Array<string>, c: [] as Array<string> }
      const record = (into: Array<string>) => (change: { _tag: string; room: string; user: string; reason?: string }) =>
        void into.push(`${change._tag} ${change.room} ${change.user}${change.reason ? ` (${change.reason})` : ""}`)
      yield* a.changes(record(seen.a))
      yield* b.changes(record(seen.b))
      yield* c.changes(record(seen.c))
      // The subscriptions are forked: wait until a's announcement is seen.
      yield* a.announce({ _tag: "Joined", room: "#r", user: "ann" }).pipe(
        Effect.zipRight(Effect.suspend(() => seen.b.length > 0 && seen.c.length > 0 ? Effect.void : Effect.fail("not yet"))),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds")))
      )
      yield* b.announce({ _tag: "Left", room: "#r", user: "bo", reason: "node lost" })
      yield* Fixtures.eventually(() => seen.a.length > 0 && seen.c.some((x) => x.startsWith("Left")))
      assert.isTrue(seen.b.every((x) => x === "Joined #r ann"))
      assert.deepStrictEqual(seen.a, ["Left #r bo (node lost)"])
      assert.isTrue(seen.c.includes("Left #r bo (node lost)"))
      assert.isFalse(seen.b.some((x) => x.startsWith("Left")), "a node skips its own announcement")
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("a release, a leave and a join that failed while cut off from Redis are done once it is back", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const proxy = yield* Proxy.make(Fixtures.url)
      // A long TTL: only the retry, not an expiry, can free the name within the test.
      const slow = { nodeTtl: "20 seconds", refreshInterval: "150 millis", sweepInterval: "150 millis" } as const
      const a = yield* presenceNode({ prefix, nodeId: "a", ...slow }, proxy.url)
      const b = yield* presenceNode({ prefix, nodeId: "b", ...slow })
      assert.isTrue(yield* a.claim("alice", "s1"))
      yield* a.join("r", "alice")
      yield* proxy.cut
      assert.isTrue(Either.isLeft(yield* Effect.either(a.leave("r", "alice"))))
      assert.isTrue(Either.isLeft(yield* Effect.either(a.release("alice", "s1"))))
      assert.isTrue(Either.isLeft(yield* Effect.either(a.join("s", "zed"))))
      yield* Effect.sleep("300 millis")
      assert.isFalse(yield* b.claim("alice", "s2"))
      assert.deepStrictEqual(yield* b.members("r"), ["alice"])
      yield* proxy.restore
      yield* Effect.suspend(() => b.claim("alice", "s2")).pipe(
        Effect.filterOrFail((claimed) => claimed),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds")))
      )
      assert.deepStrictEqual(yield* b.members("r"), [])
      const listed = yield* b.members("s").pipe(
        Effect.filterOrFail((users) => users.length > 0),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds")))
      )
      assert.deepStrictEqual(listed, ["zed"])
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("a node cut off from Redis is announced lost within the bound, once, by one survivor", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const proxy = yield* Proxy.make(Fixtures.url)
      const a = yield* presenceNode({ prefix, nodeId: "a", ...fast })
      const c = yield* presenceNode({ prefix, nodeId: "c", ...fast })
      const b = yield* presenceNode({ prefix, nodeId: "b", ...fast }, proxy.url)
      const lost: Array<string> = []
      const record = (node: string) => (room: string, user: string) =>
        Effect.sync(() => void lost.push(`${node}:${room}:${user}`))
      yield* a.lost(record("a"))
      yield* c.lost(record("c"))
      yield* a.claim("alice", "sa")
      yield* a.join("lobby", "alice")
      assert.isTrue(yield* b.claim("carol", "sb"))
      yield* b.join("lobby", "carol")
      yield* b.join("dev", "carol")
      // Alive and refreshing: nothing is lost over several TTLs.
      yield* Effect.sleep("1500 millis")
      assert.deepStrictEqual(lost, [])
      assert.isFalse(yield* a.claim("carol", "sa2"))

      yield* proxy.cut
      const cutAt = performance.now()
      const refused = yield* Effect.flip(b.claim("dave", "sb"))
      assert.strictEqual(refused._tag, "PresenceUnavailable")
      yield* Fixtures.eventually(() => lost.length >= 2, "3 seconds")
      const elapsed = performance.now() - cutAt
      assert.isBelow(elapsed, BOUND_MS)
      assert.isAtLeast(elapsed, EARLIEST_MS)
      yield* Effect.sleep("500 millis")
      assert.deepStrictEqual(lost.map((l) => l.slice(2)).sort(), ["dev:carol", "lobby:carol"])
      assert.deepStrictEqual(yield* a.members("lobby"), ["alice"])
      assert.deepStrictEqual(yield* c.members("dev"), [])
      assert.isTrue(yield* c.claim("carol", "sc"))
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("a graceful release leaves no zombie and nothing announced", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const a = yield* presenceNode({ prefix, nodeId: "a", ...fast })
      const lost: Array<string> = []
      yield* a.lost((room, user) => Effect.sync(() => void lost.push(`${room}:${user}`)))
      const scope = yield* Scope.make()
      const b = yield* presenceNode({ prefix, nodeId: "b", ...fast }).pipe(Scope.extend(scope))
      yield* b.claim("carol", "sb")
      yield* b.join("lobby", "carol")
      assert.deepStrictEqual(yield* a.members("lobby"), ["carol"])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* a.members("lobby"), [])
      assert.isTrue(yield* a.claim("carol", "sa"))
      yield* Effect.sleep(`${BOUND_MS} millis`)
      assert.deepStrictEqual(lost, [])
      assert.deepStrictEqual(yield* a.members("lobby"), [])
      assert.isFalse(yield* a.claim("carol", "other"))
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("presence after Redis restarted empty: each node says again what it holds", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const prefix = Fixtures.prefix()
      const fast = { prefix, nodeTtl: "600 millis", refreshInterval: "100 millis", sweepInterval: "100 millis" } as const
      const a = yield* presenceNode({ ...fast, nodeId: "a" }, server.url)
      const b = yield* presenceNode({ ...fast, nodeId: "b" }, server.url)
      assert.isTrue(yield* a.claim("alice", "sa"))
      yield* a.join("lobby", "alice")
      yield* server.kill
      yield* server.start
      const restored = yield* b.members("lobby").pipe(
        Effect.filterOrFail((members) => members.length === 1),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("3 seconds"))),
        Effect.either
      )
      assert(Either.isRight(restored))
      assert.deepStrictEqual(restored.right, ["alice"])
      assert.isFalse(yield* b.claim("alice", "sb"))
    }).pipe(Effect.scoped))
})
