/**
 * A small Tether-owned Redis service over node-redis (`@redis/client`): a
 * scoped resource built from a URL, typed failures, reconnect with backoff,
 * and three connections with one job each: commands (pipelined), pub/sub, and
 * blocking reads. Every command has a timeout, and while a connection is down
 * commands fail at once (no offline queue), so an unreachable Redis is a
 * `RedisError`, never a hang or a command replayed late.
 *
 * @example
 * ```ts
 * import * as Redis from "@tether/redis/Redis"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const redis = yield* Redis.Redis
 *   yield* redis.command(["SET", "greeting", "hello"])
 *   return yield* redis.command(["GET", "greeting"])
 * }).pipe(Effect.provide(Redis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/client.js"
import type * as Script from "./Script.js"

/**
 * A Redis failure: `Unavailable` (not connected, connection lost before the
 * reply, refused), `Timeout` (no reply within the command timeout; the command
 * may or may not have run), `ErrorReply` (Redis answered with an error).
 *
 * @since 0.2.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  /** `Unsupported`: the server answers, but lacks what a layer needs (e.g. too old a version). */
  readonly reason: "Unavailable" | "Timeout" | "ErrorReply" | "Unsupported"
  readonly command: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `redis ${this.reason} (${this.command})${detail}`
  }
}

/**
 * A reply as node-redis gives it with RESP2.
 *
 * @since 0.2.0
 * @category models
 */
export type Reply = string | number | null | ReadonlyArray<Reply>

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** `redis://[user:password@]host:port[/db]` */
  readonly url: string
  /** Client name prefix shown by `CLIENT LIST` (default `tether`). */
  readonly name?: string
  /** Bound on opening a connection, and on the first connect of the layer (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput
  /** Bound on each command's reply (default 2 s). */
  readonly commandTimeout?: Duration.DurationInput
  /** First reconnect delay, doubled per attempt (default 50 ms). */
  readonly reconnectBase?: Duration.DurationInput
  /** Longest reconnect delay (default 2 s). */
  readonly reconnectMax?: Duration.DurationInput
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultOptions = {
  name: "tether",
  connectTimeout: Duration.seconds(5),
  commandTimeout: Duration.seconds(2),
  reconnectBase: Duration.millis(50),
  reconnectMax: Duration.seconds(2)
} as const

/**
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** Runs one command on the shared command connection (pipelined with the others). */
  readonly command: (args: ReadonlyArray<string>) => Effect.Effect<Reply, RedisError>
  /** Runs a Lua script by its SHA1, loading it on `NOSCRIPT` (one round trip once loaded). */
  readonly eval: (
    script: Script.Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>
  ) => Effect.Effect<Reply, RedisError>
  /**
   * `eval` without an Effect: `done` is called once, with the reply or the
   * typed failure (same timeout, same `NOSCRIPT` reload). For a caller with
   * many scripts in flight (the history's publishes): no fiber per call.
   * `done` runs on a promise's callback: it must not throw.
   */
  readonly unsafeEval: (
    script: Script.Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    done: (result: Either.Either<Reply, RedisError>) => void
  ) => void
  /**
   * Runs a blocking command (`XREAD BLOCK`, `BLPOP`, ...) on the dedicated
   * blocking connection, one at a time; `block` is how long the command itself
   * may wait, added to the command timeout.
   */
  readonly blocking: (args: ReadonlyArray<string>, block: Duration.DurationInput) => Effect.Effect<Reply, RedisError>
  /**
   * Subscribes `onMessage` to `channel` on the pub/sub connection until the
   * scope closes. After a reconnect the connection subscribes again by itself
   * (messages published meanwhile are lost: see `onReconnect`).
   */
  readonly subscribe: (
    channel: string,
    onMessage: (message: string) => void
  ) => Effect.Effect<void, RedisError, Scope.Scope>
  /** As `subscribe`, with each message's bytes as they came (no UTF-8 decoding of the whole). */
  readonly subscribeBytes: (
    channel: string,
    onMessage: (message: Buffer) => void
  ) => Effect.Effect<void, RedisError, Scope.Scope>
  /**
   * Calls `f` each time the pub/sub connection is ready again after a loss,
   * once its subscriptions are restored, until the scope closes: the moment to
   * read from durable storage what pub/sub dropped.
   */
  readonly onReconnect: (f: () => void) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.2.0
 * @category services
 */
export class Redis extends Context.Tag("@tether/redis/Redis")<Redis, Service>() {}

/**
 * Connects the three connections and returns the service; they close with
 * the scope. Fails with `Unavailable` when Redis cannot be reached within
 * `connectTimeout`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Service, RedisError, Scope.Scope> = internal.make

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Redis, RedisError> => Layer.scoped(Redis, make(options))
