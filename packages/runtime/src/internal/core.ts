/**
 * What the parts of a connection's engine (inbound, outbound, liveness) see
 * of the lifecycle core, and the waiter helpers they share.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ConnectionError } from "../ConnectionError.js"

/** @internal */
export interface Core {
  /** The failure that ended the connection, once it has ended. */
  readonly failure: ConnectionError | undefined
  /** Ends the connection with `error`: the first failure wins, the rest are ignored. */
  fail(error: ConnectionError): void
  /** The time, from the connection's `Clock`. */
  now(): number
}

/** Counters of one connection. @internal */
export interface Stats {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
}

/** @internal */
export type Waiters = Array<() => void> | undefined

/** @internal */
export const releaseAll = (waiters: Waiters): void => {
  if (waiters === undefined) return
  for (let i = 0; i < waiters.length; i++) waiters[i]!()
}

/** An Effect that completes when `register`'s callback is called (once), interruptibly. @internal */
export const waitFor = (register: (resume: () => void) => void): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let done = false
    register(() => {
      if (!done) {
        done = true
        resume(Effect.void)
      }
    })
    return Effect.sync(() => {
      done = true
    })
  })

/** Metric updates without extra tags (one shared array: no allocation per update). @internal */
export const noTags: ReadonlyArray<never> = []
