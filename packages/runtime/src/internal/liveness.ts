/**
 * Liveness: the heartbeat policy and the deadline of one connection as a step
 * function. Given the time, `run` does what is due (ping, or fail with
 * `HeartbeatTimeout` / `DeadlineExceeded`) and answers when it is next due.
 * The fiber driver runs it in a heartbeat fiber; the callback driver on the
 * server's shared scheduler.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { DeadlineExceeded, HeartbeatTimeout } from "../ConnectionError.js"
import type * as Heartbeat from "../Heartbeat.js"
import type * as HeartbeatScheduler from "../HeartbeatScheduler.js"
import * as Metrics from "../Metrics.js"
import { type Core, noTags } from "./core.js"

/** @internal */
export interface Deadline {
  readonly afterMs: number
  readonly what: string
  /** No pings until the deadline is lifted (a login step: the first answer is the login's). */
  readonly quiet: boolean
  /** Bytes the peer may send before the deadline is lifted (a login is small). */
  readonly maxBytes: number | undefined
}

/** @internal */
export class Liveness<M> implements HeartbeatScheduler.Beat {
  /** Last time anything (or, for pong-counting policies, a reply) was heard. */
  private lastHeard = 0
  private lastPong = 0
  private deadlineAt: number | undefined = undefined
  private quiet = false
  private seq = 0
  /**
   * When the last ping went out; -Infinity before the first. A number from
   * the start: V8 stores a time in a field that first held `undefined` as a
   * new heap number each time (one allocation per ping).
   */
  private lastPing = -Infinity
  private nextPingAt = Infinity
  private pinger: Heartbeat.Pinger | undefined = undefined
  private readonly timeoutMs: number | undefined
  /** Whether any inbound frame counts as a sign of life (else only replies). */
  readonly countsAny: boolean
  /** While the deadline runs: the bytes the peer may send before it is lifted. */
  bytesUntilLifted: number | undefined = undefined
  /** Called when the next due time moved earlier than the driver may think (set by the driver). */
  reschedule: (() => void) | undefined = undefined

  constructor(
    private readonly core: Core,
    private readonly policy: Heartbeat.Policy | undefined,
    private readonly dialect: Heartbeat.Dialect<M> | undefined,
    private readonly deadline: Deadline | undefined,
    private readonly ping: (message: M) => void
  ) {
    this.timeoutMs = policy?.timeoutMs
    this.countsAny = policy?.counts !== "pong"
  }

  /** Whether there is anything to watch at all. */
  get enabled(): boolean {
    return this.timeoutMs !== undefined || this.policy?.pinger !== undefined || this.deadline !== undefined
  }

  /** Starts the clocks at `now`; returns the first due time. */
  start(now: number): number | undefined {
    this.lastHeard = this.lastPong = now
    const deadline = this.deadline
    if (deadline !== undefined) {
      this.deadlineAt = now + deadline.afterMs
      this.quiet = deadline.quiet
      this.bytesUntilLifted = deadline.maxBytes
    }
    this.startPings(now)
    return this.nextDue()
  }

  private startPings(now: number): void {
    const make = this.policy?.pinger
    if (make === undefined || this.quiet) return
    this.pinger = make()
    this.nextPingAt = now + this.pinger.first()
  }

  /** Something arrived. */
  heard(at: number): void {
    if (this.countsAny) this.lastHeard = at
  }

  /** A heartbeat reply arrived. */
  pong(at: number): void {
    this.lastPong = at
    if (!this.countsAny) this.lastHeard = at
  }

  /** Lifts the deadline; after a quiet one (login), the heartbeat starts now. */
  clearDeadline(now: number): void {
    if (this.deadlineAt === undefined) return
    this.deadlineAt = undefined
    this.bytesUntilLifted = undefined
    if (this.quiet) {
      this.quiet = false
      this.lastHeard = this.lastPong = now
      this.startPings(now)
      this.reschedule?.()
    }
  }

  run(at: number): number | undefined {
    const core = this.core
    if (core.failure !== undefined) return undefined
    const timeoutMs = this.timeoutMs
    if (timeoutMs !== undefined && at - this.lastHeard >= timeoutMs) {
      Metrics.heartbeatTimeouts.unsafeUpdate(1, noTags)
      core.fail(new HeartbeatTimeout({ silentForMs: at - this.lastHeard, timeoutMs }))
      return undefined
    }
    if (this.deadlineAt !== undefined && at >= this.deadlineAt) {
      core.fail(new DeadlineExceeded({ what: this.deadline!.what, afterMs: this.deadline!.afterMs }))
      return undefined
    }
    const pinger = this.pinger
    if (pinger !== undefined && at >= this.nextPingAt) {
      const missed = this.lastPong < this.lastPing
      // A full queue fails the connection inside `ping`; a closing one skips
      // the ping but keeps watching liveness while it flushes.
      this.ping(this.dialect!.ping(this.seq))
      this.seq = (this.seq + 1) >>> 0
      this.lastPing = at
      this.nextPingAt = at + pinger.next(missed, at)
    }
    return this.nextDue()
  }

  nextDue(): number | undefined {
    let due = this.nextPingAt
    if (this.timeoutMs !== undefined) due = Math.min(due, this.lastHeard + this.timeoutMs)
    if (this.deadlineAt !== undefined) due = Math.min(due, this.deadlineAt)
    return due === Infinity ? undefined : due
  }
}

/**
 * Liveness in a fiber of its own: sleeps until it is due, runs it; woken
 * early when the due time moves (a lifted login deadline starts the pings).
 *
 * @internal
 */
export const fiber = <M>(liveness: Liveness<M>, core: Core): Effect.Effect<void> => {
  let wake: (() => void) | undefined
  liveness.reschedule = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const woken = Effect.async<void>((resume) => {
    wake = () => resume(Effect.void)
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const tick: Effect.Effect<void> = Effect.suspend(() => {
    const at = core.now()
    const due = liveness.run(at)
    if (due === undefined) return core.failure === undefined ? Effect.flatMap(woken, () => tick) : Effect.void
    return Effect.flatMap(Effect.raceFirst(Effect.sleep(Math.max(0, due - at)), woken), () => tick)
  })
  return tick
}
