import { assert, describe, it } from "@effect/vitest"
import * as Redis from "@tether/redis/Redis"
import * as RedisMetrics from "@tether/redis/RedisMetrics"
import * as Script from "@tether/redis/Script"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Fixtures from "./fixtures/redis.js"
import * as RedisServer from "@tether/testing/RedisServer"

describe("Redis", () => {
  it.live("an address where nothing listens fails the layer with Unavailable, in bounded time", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(RedisServer.freePort)
      const started = performance.now()
      const error = yield* Effect.flip(Effect.scoped(Redis.make(Fixtures.options(`redis://127.0.0.1:${port}`))))
      assert.strictEqual(error._tag, "RedisError")
      assert.strictEqual(error.reason, "Unavailable")
      assert.isBelow(performance.now() - started, 3_000)
    }))

  it.live("commands, scripts by SHA (loaded on NOSCRIPT), error replies typed", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.make(Fixtures.options())
      yield* redis.command(["SET", `${prefix}k`, "v"])
      assert.strictEqual(yield* redis.command(["GET", `${prefix}k`]), "v")
      const script = Script.make("echo", `return {KEYS[1], ARGV[1], ${Math.random()}}`)
      const reply = (yield* redis.eval(script, [`${prefix}k`], ["a"])) as ReadonlyArray<unknown>
      assert.deepStrictEqual(reply.slice(0, 2), [`${prefix}k`, "a"])
      const wrong = yield* Effect.flip(redis.command(["HGET", `${prefix}k`, "f"]))
      assert.strictEqual(wrong.reason, "ErrorReply")
      // The same through the callback form: a script Redis has not seen, then an error reply.
      const unsafeEval = (s: Script.Script, keys: Array<string>, args: Array<string>) =>
        Effect.async<Either.Either<Redis.Reply, Redis.RedisError>>((resume) =>
          redis.unsafeEval(s, keys, args, (result) => resume(Effect.succeed(result)))
        )
      const fresh = Script.make("echo2", `return {KEYS[1], ARGV[1], ${Math.random()}}`)
      const answered = yield* unsafeEval(fresh, [`${prefix}k`], ["b"])
      assert(Either.isRight(answered))
      assert.deepStrictEqual((answered.right as ReadonlyArray<unknown>).slice(0, 2), [`${prefix}k`, "b"])
      const failing = yield* unsafeEval(Script.make("wrong", "return redis.call('HGET', KEYS[1], 'f')"), [`${prefix}k`], [])
      assert(Either.isLeft(failing) && failing.left.reason === "ErrorReply")
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("a blocking read has its own connection: commands go on while it waits", () => {
    const prefix = Fixtures.prefix()
    return Effect.gen(function*() {
      const redis = yield* Redis.make(Fixtures.options())
      const read = yield* Effect.fork(redis.blocking(["XREAD", "BLOCK", "2000", "STREAMS", `${prefix}s`, "$"], "2 seconds"))
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* redis.command(["PING"]), "PONG")
      assert.isNull(read.unsafePoll())
      yield* redis.command(["XADD", `${prefix}s`, "*", "f", "v"])
      const reply = (yield* Fiber.join(read)) as ReadonlyArray<ReadonlyArray<unknown>>
      assert.strictEqual(reply[0]![0], `${prefix}s`)
    }).pipe(Effect.scoped, Effect.ensuring(Fixtures.cleanup(prefix)))
  })

  it.live("a Redis that stops answering gives Timeout, not a hang; the same service works when it answers again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const redis = yield* Redis.make(Fixtures.options(server.url))
      yield* server.pause
      const started = performance.now()
      const error = yield* Effect.flip(redis.command(["SET", "k", "v"]))
      assert.strictEqual(error.reason, "Timeout")
      assert.isBelow(performance.now() - started, 1_500)
      // The callback form times out alike.
      const script = Script.make("one", "return 1")
      const timedOut = yield* Effect.async<Either.Either<Redis.Reply, Redis.RedisError>>((resume) =>
        redis.unsafeEval(script, [], [], (result) => resume(Effect.succeed(result)))
      )
      assert(Either.isLeft(timedOut) && timedOut.left.reason === "Timeout")
      yield* server.resume
      assert.strictEqual(yield* redis.command(["GET", "k"]), "v")
    }).pipe(Effect.scoped))

  it.live("a killed Redis gives Unavailable at once; the service reconnects by itself after a restart", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const redis = yield* Redis.make(Fixtures.options(server.url))
      const unavailable = RedisMetrics.errors.pipe(Metric.tagged("reason", "Unavailable"))
      const trips = RedisMetrics.roundTrips.pipe(Metric.tagged("connection", "command"))
      const [errorsBefore, tripsBefore] = [(yield* Metric.value(unavailable)).count, (yield* Metric.value(trips)).count]
      yield* server.kill
      const error = yield* Effect.flip(redis.command(["PING"]))
      assert.strictEqual(error.reason, "Unavailable")
      assert.strictEqual((yield* Metric.value(unavailable)).count - errorsBefore, 1)
      assert.strictEqual((yield* Metric.value(trips)).count - tripsBefore, 1)
      yield* server.start
      const pong = yield* redis.command(["PING"]).pipe(
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("3 seconds")))
      )
      assert.strictEqual(pong, "PONG")
    }).pipe(Effect.scoped))
})
