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
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
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

  // The loop sleeps with a plain `Effect.sleep` until the earliest due time
  // (one timer per wake-up; a race with a wake-up signal would fork two
  // fibers and interrupt one each time, ~1,000 times a second with 10,000
  // connections whose due times spread over the interval). An entry due
  // earlier than that sleep (rare: the first one, or a shorter interval)
  // starts a new loop; the sleeping one finds itself outdated when it wakes
  // and ends.
  let generation = 0
  const loop = (mine: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (mine !== generation) return Effect.void
      runDue()
      const next = heap.length > 0 ? heap[0]!.due : Infinity
      sleepingUntil = next
      if (next === Infinity) return Effect.void
      return Effect.flatMap(Effect.sleep(Math.max(0, next - clock.unsafeCurrentTimeMillis())), () => loop(mine))
    })
  // Loops run in the scope's FiberSet: closing the scope interrupts them.
  const runFork = yield* FiberSet.runtime(yield* FiberSet.make<void>())<never>()
  const restart = () => {
    const mine = ++generation
    runFork(loop(mine))
  }

  return {
    add: (beat, due) => {
      const entry: Entry = { due, beat, cancelled: false }
      live++
      push(entry)
      // Earlier than the loop sleeps for (or no loop sleeps): a loop for it.
      if (due < sleepingUntil) {
        sleepingUntil = due
        restart()
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
