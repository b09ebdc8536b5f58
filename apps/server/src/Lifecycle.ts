/**
 * The order in which the server's parts start and stop, so that `/healthz`
 * tells the truth: the HTTP side (if any) starts first and so closes last,
 * after the TCP drain; the process is `ready` once the mode listens, and
 * `draining` from the moment its scope starts closing (that finalizer is
 * added last, so it runs first).
 */
import * as Health from "@tether/runtime/Health"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Modes from "./Modes.js"

/** What is running: the mode, and the HTTP side's URL if one was started. */
export interface Started {
  readonly running: Modes.Running
  readonly httpUrl: string | undefined
}

/** Starts `http` (when given), then the mode, then marks the process ready. */
export const start = <E1, R1, E2, R2>(
  mode: Effect.Effect<Modes.Running, E1, R1>,
  http: Effect.Effect<{ readonly url: string }, E2, R2> | undefined
): Effect.Effect<Started, E1 | E2, R1 | R2 | Health.Health | Scope.Scope> =>
  Effect.gen(function*() {
    const health = yield* Health.Health
    const served = http === undefined ? undefined : yield* http
    const running = yield* mode
    yield* Effect.addFinalizer(() => health.markDraining)
    yield* health.markReady
    return { running, httpUrl: served?.url }
  })
