/**
 * One heartbeat fiber for many connections. Each connection registers a
 * {@link Beat}: when it is due, the scheduler calls it, and it answers when
 * it is next due. Due times come from `Clock`, the scheduler sleeps with
 * `Effect.sleep` until the earliest one, so `TestClock` drives it exactly as
 * it drives a per-connection heartbeat fiber; the saving is one fiber and one
 * timer per connection (`bench/RESULTS.md` has the numbers).
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

/**
 * A connection's heartbeat step: run at (or after) its due time, it does
 * what is due (ping, timeout) and returns the next due time, or `undefined`
 * when it needs no more calls.
 *
 * @since 0.1.0
 * @category models
 */
export interface Beat {
  readonly run: (now: number) => number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatScheduler {
  /** Schedules `beat` at `due`; the returned function cancels it. */
  readonly add: (beat: Beat, due: number) => () => void
  /** Beats scheduled. */
  readonly size: () => number
}

interface Entry {
  due: number
  readonly beat: Beat
  cancelled: boolean
}

/**
 * Starts a scheduler whose fiber lives in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<HeartbeatScheduler, never, Scope.Scope> = Effect.gen(function*() {
  const clock = yield* Effect.clock
  // A binary min-heap on `due`.
  const heap: Array<Entry> = []
  let live = 0
  let wake: Deferred.Deferred<void> | undefined
  let sleepingUntil = Infinity

  const up = (i: number) => {
    const entry = heap[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.due <= entry.due) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = entry
  }
  const down = (i: number) => {
    const entry = heap[i]!
    const n = heap.length
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && heap[child + 1]!.due < heap[child]!.due) child++
      if (heap[child]!.due >= entry.due) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = entry
  }
  const push = (entry: Entry) => {
    heap.push(entry)
    up(heap.length - 1)
  }
  const pop = (): Entry => {
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      down(0)
    }
    return top
  }

  const runDue = () => {
    const now = clock.unsafeCurrentTimeMillis()
    while (heap.length > 0 && heap[0]!.due <= now) {
      const entry = pop()
      if (entry.cancelled) continue
      const next = entry.beat.run(now)
      if (next === undefined || entry.cancelled) {
        if (!entry.cancelled) {
          entry.cancelled = true
          live--
        }
        continue
      }
      entry.due = next
      push(entry)
    }
    while (heap.length > 0 && heap[0]!.cancelled) pop()
  }

  const loop: Effect.Effect<never> = Effect.suspend(() => {
    runDue()
    const next = heap.length > 0 ? heap[0]!.due : Infinity
    const signal = Deferred.unsafeMake<void>(FiberId.none)
    wake = signal
    sleepingUntil = next
    const waitForSignal = Deferred.await(signal)
    const wait = next === Infinity
      ? waitForSignal
      : Effect.raceFirst(Effect.sleep(Math.max(0, next - clock.unsafeCurrentTimeMillis())), waitForSignal)
    return Effect.flatMap(wait, () => loop)
  })
  yield* Effect.forkScoped(loop)

  return {
    add: (beat, due) => {
      const entry: Entry = { due, beat, cancelled: false }
      live++
      push(entry)
      // An earlier due time than the one the fiber sleeps for: wake it.
      if (due < sleepingUntil && wake !== undefined) {
        sleepingUntil = due
        Deferred.unsafeDone(wake, Effect.void)
      }
      return () => {
        if (!entry.cancelled) {
          entry.cancelled = true
          live--
        }
      }
    },
    size: () => live
  }
})
