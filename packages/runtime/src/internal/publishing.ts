/**
 * The chat server's publishes in flight: through the layer's `unsafePublish`
 * when it has one (no fiber per line while Redis answers), else a fiber per
 * publish in a `FiberSet`; `awaitIdle` waits for both kinds (shutdown).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"
import type * as History from "../History.js"

/** @internal */
export interface Publishing {
  readonly publish: (
    room: string,
    render: (position: History.Position, at: number) => string,
    options: { readonly key?: string; readonly checked?: boolean },
    done: (result: Either.Either<History.Position, History.HistoryUnavailable>) => void
  ) => void
  readonly awaitIdle: Effect.Effect<void>
}

/** @internal */
export const make = (history: History.History["Type"]): Effect.Effect<Publishing, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    let pending = 0
    let idle: Array<() => void> = []
    const settled = () => {
      if (--pending > 0) return
      const waiting = idle
      idle = []
      for (const wake of waiting) wake()
    }
    const unsafePublish = history.unsafePublish
    const publish: Publishing["publish"] = unsafePublish === undefined
      ? (room, render, options, done) => void run(Effect.map(Effect.either(history.publish(room, render, options)), done))
      : (room, render, options, done) => {
        pending++
        unsafePublish(room, render, options, (result) => {
          try {
            done(result)
          } finally {
            settled()
          }
        })
      }
    const awaitCallbacks = Effect.async<void>((resume) => {
      if (pending === 0) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      idle.push(wake)
      return Effect.sync(() => void (idle = idle.filter((w) => w !== wake)))
    })
    return { publish, awaitIdle: Effect.zipRight(FiberSet.awaitEmpty(fibers), awaitCallbacks) }
  })

