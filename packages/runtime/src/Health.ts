/**
 * Whether this process should be sent traffic: `ready`, `draining` (shutting
 * down gracefully: finish, take nothing new) or `not_ready` (starting, or a
 * registered check fails). What `/healthz` answers.
 *
 * The app marks the process ready once it listens and draining when its
 * drain starts. Other layers add checks: a cluster layer registers one that
 * pings Redis, so an unreachable Redis reads `not_ready`. Each check runs
 * with a timeout, so a hung dependency answers `not_ready`, not never.
 *
 * ```ts
 * const health = yield* Health.Health
 * yield* health.register("redis", Effect.mapError(redis.ping, (e) => `unreachable: ${e.message}`))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/**
 * @since 0.2.0
 * @category models
 */
export type State = "ready" | "draining" | "not_ready"

/**
 * One check's outcome.
 *
 * @since 0.2.0
 * @category models
 */
export interface CheckResult {
  readonly name: string
  readonly ok: boolean
  /** Why it failed (bounded; never raw peer input). */
  readonly detail?: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Report {
  readonly state: State
  readonly checks: ReadonlyArray<CheckResult>
}

/**
 * A check: succeeds when healthy, fails with a reason when not.
 *
 * @since 0.2.0
 * @category models
 */
export type Check = Effect.Effect<void, string>

/**
 * @since 0.2.0
 * @category services
 */
export class Health extends Context.Tag("@tether/runtime/Health")<Health, {
  /** Serving: ready unless a check fails. */
  readonly markReady: Effect.Effect<void>
  /** Shutting down: `draining` from now on, whatever the checks say. */
  readonly markDraining: Effect.Effect<void>
  /** Adds a check for as long as the scope is open. */
  readonly register: (name: string, check: Check) => Effect.Effect<void, never, Scope.Scope>
  /** Runs every check (concurrently, each with the timeout) and says the state. */
  readonly report: Effect.Effect<Report>
}>() {}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** A check that has not answered by then counts as failed (default 2 s). */
  readonly checkTimeout?: Duration.DurationInput
}

/**
 * How long a check may take (2 s).
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultCheckTimeout: Duration.DurationInput = "2 seconds"

const maxDetail = 200

/**
 * A fresh Health: `not_ready` until `markReady`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Health["Type"]> =>
  Effect.sync(() => {
    let phase: "starting" | "serving" | "draining" = "starting"
    const checks = new Map<number, { readonly name: string; readonly check: Check }>()
    let nextId = 0
    const timeout = Duration.decode(options.checkTimeout ?? defaultCheckTimeout)
    const run = (name: string, check: Check): Effect.Effect<CheckResult> =>
      check.pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => `no answer within ${Duration.format(timeout)}` }),
        Effect.match({
          onSuccess: (): CheckResult => ({ name, ok: true }),
          onFailure: (detail): CheckResult => ({ name, ok: false, detail: String(detail).slice(0, maxDetail) })
        }),
        Effect.catchAllDefect(() => Effect.succeed<CheckResult>({ name, ok: false, detail: "check died" }))
      )
    return Health.of({
      markReady: Effect.sync(() => {
        if (phase === "starting") phase = "serving"
      }),
      markDraining: Effect.sync(() => {
        phase = "draining"
      }),
      register: (name, check) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const id = nextId++
            checks.set(id, { name, check })
            return id
          }),
          (id) => Effect.sync(() => checks.delete(id))
        ),
      report: Effect.suspend(() =>
        Effect.map(
          Effect.forEach(Array.from(checks.values()), (c) => run(c.name, c.check), { concurrency: "unbounded" }),
          (results): Report => ({
            state: phase === "draining"
              ? "draining"
              : phase === "starting" || results.some((r) => !r.ok)
              ? "not_ready"
              : "ready",
            checks: results
          })
        )
      )
    })
  })

/**
 * A Health service ({@link make}).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Health> => Layer.effect(Health, make(options))
