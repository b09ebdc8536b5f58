/**
 * The machine's Redis, as tests and benchmarks use it: `REDIS_URL` (default
 * the Redis 7 every machine runs at 127.0.0.1:6379), a key prefix of the
 * caller's own, and the clean-up of every key under it.
 */
import * as Redis from "@tether/redis/Redis"
import { randomBytes } from "node:crypto"
import * as Effect from "effect/Effect"

/** The Redis the tests use: `REDIS_URL`, default the machine's Redis 7. */
export const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A key prefix of the caller's own. */
export const prefix = (): string => `test:${randomBytes(6).toString("hex")}:`

/** Deletes every key under `keyPrefix` (never fails: a clean-up). */
export const cleanup = (keyPrefix: string, target: string = url): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const redis = yield* Redis.make({ url: target, connectTimeout: "2 seconds" })
    let cursor = "0"
    do {
      const [next, keys] = (yield* redis.command(["SCAN", cursor, "MATCH", `${keyPrefix}*`, "COUNT", "1000"])) as [
        string,
        ReadonlyArray<string>
      ]
      cursor = next
      if (keys.length > 0) yield* redis.command(["DEL", ...keys])
    } while (cursor !== "0")
  })).pipe(Effect.ignore)
