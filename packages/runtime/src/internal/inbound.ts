/**
 * The inbound half of a connection: chunk -> frames -> messages (the wire's
 * parser) -> control filter (heartbeat traffic answered and counted here,
 * never handed on) -> a bounded batch -> the handler.
 *
 * It runs synchronously inside the transport's data callback. A handler that
 * returns nothing ran right there and costs no fiber; one that returns an
 * Effect runs in a handler fiber (started by the driver), and batches that
 * arrive meanwhile wait for it, bounded in messages and bytes.
 *
 * @internal
 */
import type * as Wire from "@tether/protocol/Wire"
import * as Effect from "effect/Effect"
import { type ConnectionError, PeerClosed, ProtocolError } from "../ConnectionError.js"
import type * as Heartbeat from "../Heartbeat.js"
import * as Metrics from "../Metrics.js"
import { type Core, noTags, releaseAll, type Stats, waitFor, type Waiters } from "./core.js"
import type { Liveness } from "./liveness.js"
import type { Outbound } from "./outbound.js"

/** @internal */
export type Handler<M> = (batch: ReadonlyArray<M>) => Effect.Effect<void, any, any> | void

/** @internal */
export interface Limits {
  readonly maxMessages: number
  readonly maxBytes: number
}

/** Chunks up to this size go through `Inbound.incoming` (heartbeat replies are smaller). */
const smallChunk = 64

/** @internal */
export class Inbound<M> {
  private batch: Array<M> = []
  /**
   * With a dialect, the messages of a small chunk (a heartbeat reply comes
   * in one) land here first, after a placeholder that is never removed:
   * what the control filter keeps moves on to `batch`, and this array is
   * cut back to length 1, never 0. V8 frees an emptied array's storage and
   * the next push allocates 17 slots again: ~150 B for every heartbeat
   * reply, which leaves nothing behind. A larger chunk's messages go
   * straight to `batch` (they would outgrow these slots, and V8 trims them
   * when cut back).
   */
  private readonly incoming: Array<M> = [undefined as M]
  private bytes = 0
  /** A handler fiber is running (or a batch waits for outbound room). */
  handling = false
  paused = false
  private idleWaiters: Waiters = undefined
  private parser: Wire.Parser<M> | undefined = undefined
  private handler: Handler<M> | undefined = undefined
  private loop: Effect.Effect<void, unknown, any> | undefined = undefined
  private startHandler: ((effect: Effect.Effect<void, unknown, any>) => void) | undefined = undefined
  private readonly answers: boolean

  constructor(
    private readonly core: Core,
    private readonly wire: Wire.Wire<M>,
    private readonly dialect: Heartbeat.Dialect<M> | undefined,
    policy: Heartbeat.Policy | undefined,
    private readonly limits: Limits,
    private readonly liveness: Liveness<M>,
    private readonly outbound: Outbound<M>,
    private readonly stats: Stats
  ) {
    this.answers = policy?.answers === true && dialect !== undefined
  }

  /**
   * Starts reading: `handler` gets the batches; `startHandler` runs an
   * Effect a handler returned (in the driver's handler fiber).
   */
  start(handler: Handler<M>, startHandler: (effect: Effect.Effect<void, unknown, any>) => void): void {
    this.parser = this.wire.parser()
    this.handler = handler
    this.startHandler = startHandler
  }

  onData(chunk: Uint8Array): void {
    const core = this.core
    if (core.failure !== undefined) return
    const stats = this.stats
    stats.bytesIn += chunk.length
    const allowed = this.liveness.bytesUntilLifted
    if (allowed !== undefined && stats.bytesIn > allowed) {
      // Before login a peer gets a small budget: a 1 MiB "login" is cut off, not buffered.
      return core.fail(new ProtocolError({
        reason: "InboundOverflow",
        detail: `${stats.bytesIn} bytes before the deadline was met (limit ${allowed})`
      }))
    }
    const batch = this.batch
    const incoming = this.dialect !== undefined && chunk.length <= smallChunk ? this.incoming : batch
    const before = incoming.length
    const error = this.parser!.push(chunk, incoming)
    const count = incoming.length - before
    if (count > 0) {
      stats.framesIn += count
      Metrics.framesIn.unsafeUpdate(count, noTags)
      Metrics.bytesIn.unsafeUpdate(chunk.length, noTags)
      const at = core.now()
      this.liveness.heard(at)
      if (this.dialect !== undefined) this.filterControl(incoming, before, at)
    }
    // Counted per chunk (partial frames included): an upper bound of what waits.
    this.bytes += chunk.length
    if (error !== undefined) return core.fail(error)
    if (batch.length > this.limits.maxMessages || this.bytes > this.limits.maxBytes) {
      return core.fail(
        new ProtocolError({
          reason: "InboundOverflow",
          detail: `${batch.length} messages (${this.bytes} bytes) waiting to be handled (limits ${this.limits.maxMessages}, ${this.limits.maxBytes} bytes)`
        })
      )
    }
    if (batch.length === 0) this.bytes = 0
    else if (!this.handling && !this.paused) this.dispatch()
  }

  /**
   * Answers and drops heartbeat traffic among the messages of `list` from
   * `from` on; the rest stay in the batch (or join it, from `incoming`).
   */
  private filterControl(list: Array<M>, from: number, at: number): void {
    const dialect = this.dialect!
    let kept = from
    for (let i = from; i < list.length; i++) {
      const message = list[i]!
      if (dialect.isPong(message)) this.liveness.pong(at)
      if (this.answers) {
        const reply = dialect.replyTo(message)
        if (reply !== undefined && this.outbound.pushMessage(reply) === false && this.core.failure !== undefined) {
          break
        }
      }
      if (!dialect.isControl(message)) list[kept++] = message
    }
    if (list === this.batch) {
      list.length = kept
      return
    }
    for (let i = 1; i < kept; i++) this.batch.push(list[i]!)
    list.length = 1
  }

  /** The peer closed its side: once the handler in flight is done, the connection ends. */
  onEnd(): void {
    if (this.core.failure !== undefined) return
    const end = () => this.core.fail(this.parser!.end() ?? new PeerClosed())
    if (this.handling) (this.idleWaiters ??= []).push(end)
    else end()
  }

  onError(error: ConnectionError): void {
    this.core.fail(error)
  }

  /** Hands the batch to the handler: synchronously if it allows, else in the handler fiber. */
  private dispatch(): void {
    const batch = this.batch
    this.batch = []
    this.bytes = 0
    let result: Effect.Effect<void, unknown, any> | void
    try {
      result = this.handler!(batch)
    } catch (defect) {
      result = Effect.die(defect)
    }
    if (result !== undefined) {
      this.handling = true
      this.startHandler!(Effect.flatMap(result, () => this.handlerLoop()))
    } else if (this.outbound.holds()) {
      // Backpressure: what the handler queued is over the outbound bound; the
      // next batch waits for room (the peer's input stays bounded meanwhile).
      this.handling = true
      this.startHandler!(Effect.flatMap(this.outbound.whenRoom(), () => this.handlerLoop()))
    }
  }

  /** Made on first use: a connection whose handler never returns an Effect (echo) never needs it. */
  private handlerLoop(): Effect.Effect<void, unknown, any> {
    return this.loop ??= this.makeLoop()
  }

  /** The handler fiber's loop: later batches, in order, until none is left. */
  private makeLoop(): Effect.Effect<void, unknown, any> {
    const loop: Effect.Effect<void, unknown, any> = Effect.suspend(() => {
      if (this.paused || this.batch.length === 0 || this.core.failure !== undefined) {
        this.idle()
        return Effect.void
      }
      if (this.outbound.holds()) return Effect.flatMap(this.outbound.whenRoom(), () => loop)
      const batch = this.batch
      this.batch = []
      this.bytes = 0
      const result = this.handler!(batch)
      return result === undefined ? loop : Effect.flatMap(result, () => loop)
    })
    return Effect.onInterrupt(loop, () => Effect.sync(() => this.idle()))
  }

  private idle(): void {
    this.handling = false
    const waiters = this.idleWaiters
    this.idleWaiters = undefined
    releaseAll(waiters)
  }

  /** Runs `then` once no handler is in flight. */
  whenIdleDo(then: () => void): void {
    if (this.handling) (this.idleWaiters ??= []).push(then)
    else then()
  }

  /** Waits until no handler is in flight (or the connection ended). */
  get whenIdle(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.handling && this.core.failure === undefined
        ? waitFor((resume) => (this.idleWaiters ??= []).push(resume))
        : Effect.void
    )
  }

  /** The connection ended: wake everyone who waits. */
  release(): void {
    const idle = this.idleWaiters
    this.idleWaiters = undefined
    releaseAll(idle)
  }
}
