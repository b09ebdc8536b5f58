import { assert, describe, it } from "@effect/vitest"
import * as Redis from "@tether/redis/Redis"
import * as RedisNodes from "@tether/redis/RedisNodes"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Fixtures from "./fixtures/redis.js"

/** Reads `effect` until `check` holds, waiting real time between reads (Redis replies are real I/O), 3 s at most. */
const until = <A, E>(effect: Effect.Effect<A, E>, check: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 150; i++) {
      const value = yield* effect
      if (check(value)) return value
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
    }
    return yield* Effect.dieMessage("condition not met in 3 s")
  })

describe("RedisNodes", () => {
  // TestClock: the publish schedule and the rates' seconds are the test's; Redis is real.
  it.scoped("publishes rates from totals each interval; lists live nodes by id; drops malformed ones; deletes its summary on close", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.make(Fixtures.options())
      const k = RedisNodes.keys(prefix)
      const a = yield* RedisNodes.make({ nodeId: "a", prefix, interval: "1 second", ttl: "3 seconds" }).pipe(
        Effect.provideService(Redis.Redis, redis)
      )
      const b = yield* RedisNodes.make({ nodeId: "b", prefix, interval: "1 second" }).pipe(Effect.provideService(Redis.Redis, redis))
      let totals = { connections: 2, framesIn: 100, framesOut: 400 }
      const scopeA = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      yield* Scope.extend(a.publish(() => totals), scopeA)
      yield* b.publish(() => ({ connections: 0, framesIn: 0, framesOut: 0 }))

      // The first publish is at once, with no rate yet.
      let list = yield* until(b.list, (l) => l.length === 2)
      assert.deepStrictEqual(list.map((s) => [s.node, s.connections, s.messagesInPerSecond, s.messagesOutPerSecond]), [
        ["a", 2, 0, 0],
        ["b", 0, 0, 0]
      ])
      const ttl = (yield* redis.command(["PTTL", k.summary("a")])) as number
      assert.isTrue(ttl > 0 && ttl <= 3000, `PTTL ${ttl}`)

      totals = { connections: 3, framesIn: 110, framesOut: 430 }
      yield* TestClock.adjust("1 second")
      list = yield* until(b.list, (l) => l[0]?.connections === 3)
      assert.deepStrictEqual([list[0]!.messagesInPerSecond, list[0]!.messagesOutPerSecond, list[0]!.at], [10, 30, 1000])

      // Malformed summaries are not shown, and leave the index.
      yield* redis.command(["SET", k.summary("bad"), "{not json", "PX", "5000"])
      yield* redis.command(["ZADD", k.index, "1", "bad"])
      assert.deepStrictEqual((yield* b.list).map((s) => s.node), ["a", "b"])
      assert.isNull(yield* redis.command(["ZSCORE", k.index, "bad"]))

      // A node that stops deletes its summary: gone at once.
      yield* Scope.close(scopeA, Exit.void)
      assert.isNull(yield* redis.command(["GET", k.summary("a")]))
      assert.deepStrictEqual((yield* b.list).map((s) => s.node), ["b"])
    }).pipe(Effect.ensuring(Fixtures.cleanup(prefix)))
  })
})
