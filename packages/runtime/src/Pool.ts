/**
 * A pool of clients behind one acquire/release API, on Effect's `Pool` with
 * an idle TTL. Pooled clients do not reconnect by themselves: a broken one is
 * invalidated and replaced, never handed out.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Pool from "effect/Pool"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Client from "./Client.js"

/**
 * No healthy client could be had within the acquire timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{ readonly timeoutMs: number }> {
  override get message(): string {
    return `no healthy pooled connection within ${this.timeoutMs} ms`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<M> extends Omit<Client.Options<M>, "reconnect"> {
  /** Connections kept open even when idle (default 0). */
  readonly min?: number
  /** Most connections at once (default 10). */
  readonly max?: number
  /** An idle connection above `min` is closed after this long (default 60 s). */
  readonly idleTimeToLive?: Duration.DurationInput
  /** How long `get` may wait for a healthy connection (default 5 s). */
  readonly acquireTimeout?: Duration.DurationInput
  /**
   * Extra check before a connection is handed out (e.g. a request round trip).
   * By default a connection is healthy while it is connected: its heartbeat
   * (answering the server's pings within the timeout) keeps that state true.
   */
  readonly healthCheck?: (client: Client.Client<M>) => Effect.Effect<boolean>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientPool<M> {
  /** A healthy client for the current scope; it goes back to the pool when the scope closes. */
  readonly get: Effect.Effect<Client.Client<M>, PoolTimeout, Scope.Scope>
  /** Runs `f` with a pooled client. */
  readonly use: <A, E, R>(f: (client: Client.Client<M>) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolTimeout, R>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <M>(options: Options<M>): Effect.Effect<ClientPool<M>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const acquire = Effect.gen(function*() {
      const client = yield* Client.make({ ...options, reconnect: false })
      yield* client.awaitConnected
      return client
    })
    const pool = yield* Pool.makeWithTTL({
      acquire,
      min: options.min ?? 0,
      max: options.max ?? 10,
      timeToLive: options.idleTimeToLive ?? "60 seconds",
      timeToLiveStrategy: "usage"
    })
    const healthy = (client: Client.Client<M>) =>
      Effect.flatMap(client.state, (state) =>
        state._tag !== "Connected"
          ? Effect.succeed(false)
          : options.healthCheck
          ? options.healthCheck(client)
          : Effect.succeed(true))

    const acquireTimeout = Duration.decode(options.acquireTimeout ?? "5 seconds")
    // Each attempt holds its item in a scope of its own, so an unhealthy
    // client goes back (invalidated) at once rather than when the caller's
    // scope closes.
    const attempt: Effect.Effect<Client.Client<M>, unknown, Scope.Scope> = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const client = yield* Pool.get(pool).pipe(
        Scope.extend(scope),
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      if (yield* healthy(client)) {
        yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
        return client
      }
      yield* Pool.invalidate(pool, client)
      yield* Scope.close(scope, Exit.void)
      return yield* Effect.fail("unhealthy" as const)
    })
    const get: Effect.Effect<Client.Client<M>, PoolTimeout, Scope.Scope> = attempt.pipe(
      // A failed dial or an unhealthy client: try again shortly; only the timeout ends it.
      Effect.retry(Schedule.spaced("100 millis")),
      Effect.orDie,
      Effect.timeoutFail({
        duration: acquireTimeout,
        onTimeout: () => new PoolTimeout({ timeoutMs: Duration.toMillis(acquireTimeout) })
      })
    )

    return {
      get,
      use: (f) => Effect.scoped(Effect.flatMap(get, f))
    }
  })
