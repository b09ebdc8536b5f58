/**
 * The publish script's bookkeeping, read back from Redis, and the publishing
 * node's delivery from the script's answer.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Metric from "effect/Metric"
import * as Redis from "@tether/redis/Redis"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisMetrics from "@tether/redis/RedisMetrics"
import * as Fixtures from "./fixtures/redis.js"
import { historyNode, line, recorder } from "./fixtures/nodes.js"

/** What the room holds: meta (epoch, top offset, bytes) and the stream's (offset, payload) in order. */
const roomState = (redis: Redis.Service, prefix: string, room: string) =>
  Effect.gen(function*() {
    const k = RedisHistory.keys(prefix, room)
    const [epoch, top, bytes] = (yield* redis.command(["HMGET", k.meta, "e", "o", "b"])) as Array<string | null>
    const entries = (yield* redis.command(["XRANGE", k.stream, "-", "+"])) as Array<[string, Array<string>]>
    return {
      epoch,
      top: Number(top),
      bytes: Number(bytes),
      entries: entries.map(([id, fields]) => ({ offset: Number.parseInt(id, 10), payload: fields[3]! }))
    }
  })

/** The longest suffix of `sizes` within both bounds, at least one entry. */
const keptSuffix = (sizes: ReadonlyArray<number>, maxEntries: number, maxBytes: number) => {
  let count = 0
  let bytes = 0
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (count > 0 && (count + 1 > maxEntries || bytes + sizes[i]! > maxBytes)) break
    count++
    bytes += sizes[i]!
  }
  return count
}

const lines = FastCheck.array(FastCheck.array(FastCheck.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 6 }), {
  minLength: 1,
  maxLength: 8
})

describe("RedisHistory publish script", () => {
  it.scopedLive.prop(
    "after any publishes (concurrent, batched): the top is the count, the stream the longest suffix within the bounds, the bytes their sum",
    [FastCheck.integer({ min: 1, max: 8 }), FastCheck.integer({ min: 20, max: 200 }), lines],
    ([maxEntries, maxBytes, rounds]) => {
      const prefix = Fixtures.prefix()
      return Effect.gen(function*() {
        const redis = yield* Redis.make(Fixtures.options())
        const history = yield* historyNode({ prefix, maxBatch: 3, limits: { maxEntries, maxBytes } })
        const sizes: Array<number> = []
        for (const round of rounds) {
          // Concurrent: those waiting for the call in flight go out together, at most 3 a call.
          const positions = yield* Effect.forEach(round, (size, i) => history.publish("r", () => String(i % 10).repeat(size)), {
            concurrency: "unbounded"
          })
          sizes.push(...round)
          assert.deepStrictEqual(positions.map((p) => p.offset), round.map((_, i) => sizes.length - round.length + i + 1))
        }
        const state = yield* roomState(redis, prefix, "r")
        const kept = keptSuffix(sizes, maxEntries, maxBytes)
        assert.strictEqual(state.top, sizes.length)
        assert.deepStrictEqual(state.entries.map((e) => e.offset), Array.from({ length: kept }, (_, i) => sizes.length - kept + i + 1))
        assert.deepStrictEqual(state.entries.map((e) => e.payload.length), sizes.slice(sizes.length - kept))
        assert.strictEqual(state.bytes, sizes.slice(sizes.length - kept).reduce((a, b) => a + b, 0))
      }).pipe(Effect.ensuring(Fixtures.cleanup(prefix)))
    },
    { fastCheck: { numRuns: 10 } }
  )

  it.prop(
    "the version check: 6.2 and later run the scripts, older do not; an answer without a version passes",
    [FastCheck.integer({ min: 2, max: 12 }), FastCheck.integer({ min: 0, max: 9 }), FastCheck.integer({ min: 0, max: 30 })],
    ([major, minor, patch]) => {
      const info = `# Server\r\nredis_version:${major}.${minor}.${patch}\r\nredis_git_sha1:00000000\r\n`
      assert.deepStrictEqual(RedisHistory.versionOf(info), {
        version: `${major}.${minor}.${patch}`,
        supported: major > 6 || (major === 6 && minor >= 2)
      })
      assert.isUndefined(RedisHistory.versionOf("# Server\r\nredis_mode:standalone\r\n"))
    }
  )

  it.live("the machine's Redis passes the version check", () =>
    RedisHistory.checkVersion.pipe(Effect.provide(Redis.layer(Fixtures.options()))))

  it.live("a failed XADD consumes nothing: the call fails typed, the room's top stays", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.make(Fixtures.options())
      const history = yield* historyNode({ prefix })
      yield* history.publish("r", line("one"))
      yield* history.publish("r", line("two"))
      // An entry ahead of the room's offsets (written by hand): the next XADD's id is too small.
      yield* redis.command(["XADD", RedisHistory.keys(prefix, "r").stream, "100-0", "a", "0", "p", "intruder"])
      const failed = yield* Effect.flip(history.publish("r", line("three")))
      assert.strictEqual(failed._tag, "HistoryUnavailable")
      const state = yield* roomState(redis, prefix, "r")
      assert.strictEqual(state.top, 2)
      assert.deepStrictEqual(state.entries.map((e) => e.offset), [1, 2, 100])
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("the publishing node's subscribers have each line when its publish returns (from the answer); the echo is not a duplicate; other nodes get it by pub/sub", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const publisher = yield* historyNode({ prefix })
      const other = yield* historyNode({ prefix })
      const local = recorder()
      const remote = recorder()
      yield* publisher.subscribe("r", local.deliver)
      yield* other.subscribe("r", remote.deliver)
      const duplicatesBefore = (yield* Metric.value(RedisMetrics.duplicates)).count
      for (let i = 1; i <= 30; i++) {
        const position = yield* publisher.publish("r", line(`line ${i}`))
        assert.strictEqual(local.seen.length, i, `line ${i} not delivered by the time its publish returned`)
        assert.strictEqual(local.seen[i - 1]!.entry.offset, position.offset)
      }
      yield* Fixtures.eventually(() => remote.seen.length === 30)
      // Give the echoes time to arrive: none is delivered again, none counts as a duplicate.
      yield* Effect.sleep("100 millis")
      assert.strictEqual(local.seen.length, 30)
      assert.deepStrictEqual(local.seen, remote.seen)
      assert.strictEqual((yield* Metric.value(RedisMetrics.duplicates)).count, duplicatesBefore)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })
})
