/**
 * The connection engine: the lifecycle core (the first failure ends
 * everything; a deliberate close flushes first; abort; pause) joining the
 * inbound, outbound and liveness parts. It is the object behind every
 * `Connection`; a driver (fiberDriver, callbackDriver) runs it.
 *
 * An idle connection is this object, its parts and their queues: no closure
 * per operation, no fiber of its own under the callback driver.
 *
 * @internal
 */
import type * as Socket from "@effect/platform/Socket"
import type { FrameError } from "@tether/protocol/Frame"
import * as Wire from "@tether/protocol/Wire"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Runtime from "effect/Runtime"
import type * as Connection from "../Connection.js"
import { type ConnectionError, Kicked, ProtocolError, type SlowConsumer } from "../ConnectionError.js"
import * as Transport from "../Transport.js"
import * as CallbackDriver from "./callbackDriver.js"
import type { Core, Stats } from "./core.js"
import * as FiberDriver from "./fiberDriver.js"
import { type Handler, Inbound } from "./inbound.js"
import { Liveness } from "./liveness.js"
import { Outbound } from "./outbound.js"

let nextId = 1

/** @internal */
export class Engine<M> implements Connection.Connection<M>, Core, Transport.Handlers {
  readonly id = nextId++
  readonly stats: Stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  failure: ConnectionError | undefined = undefined
  /** The socket is open (a transport is written only once the connection runs). */
  open = false
  private closeRequested = false
  readonly inbound: Inbound<M>
  readonly outbound: Outbound<M>
  readonly liveness: Liveness<M>
  readonly transport: Transport.Transport | undefined
  /** Set by the driver: called once, with why the connection ended. */
  ended: ((cause: Cause.Cause<unknown>) => void) | undefined = undefined
  /** How it ended, once it has (kept for a driver that starts after the end). */
  endCause: Cause.Cause<unknown> | undefined = undefined

  constructor(
    readonly socket: Socket.Socket,
    readonly options: Connection.Options<M>,
    private readonly clock: { readonly unsafeCurrentTimeMillis: () => number }
  ) {
    const policy = options.heartbeat
    if (policy && (policy.pinger !== undefined || policy.counts === "pong") && options.dialect === undefined) {
      throw new Error(`heartbeat policy "${policy.name}" needs a dialect`)
    }
    this.transport = Transport.fromSocket(socket)
    const wire = options.wire ?? Wire.make(options.framing, options.codec)
    this.outbound = new Outbound(this, wire, {
      capacity: options.outbound?.capacity ?? defaultOutboundCapacity,
      maxBytes: options.outbound?.maxBytes ?? defaultOutboundBytes,
      backpressure: options.outbound?.overflow === "backpressure",
      maxWriteBytes: options.maxWriteBytes ?? 1024 * 1024
    }, this.stats)
    const deadline = options.deadline
    this.liveness = new Liveness(
      this,
      policy,
      options.dialect,
      deadline === undefined
        ? undefined
        : {
          afterMs: Duration.toMillis(deadline.after),
          what: deadline.what,
          quiet: deadline.quiet === true,
          maxBytes: deadline.maxBytes
        },
      (ping) => this.ping(ping)
    )
    this.inbound = new Inbound(this, wire, options.dialect, policy, {
      maxMessages: options.maxInbound ?? defaultMaxInbound,
      maxBytes: options.maxInboundBytes ?? defaultMaxInboundBytes
    }, this.liveness, this.outbound, this.stats)
  }

  /**
   * Queues a heartbeat ping. From the heartbeat scheduler's timer (not inside
   * the data callback) the callback driver writes it at once: one microtask
   * per ping (Node's `queueMicrotask` allocates two objects each time) made
   * 10,000 idle connections cost the garbage collector more than their pings.
   */
  private ping(ping: M): void {
    const outbound = this.outbound
    if (outbound.inData) {
      void outbound.pushMessage(ping)
      return
    }
    outbound.inData = true
    void outbound.pushMessage(ping)
    outbound.inData = false
    this.flushPending()
  }

  /**
   * What was queued with `inData` set goes out now, as a raw server writes;
   * with a handler fiber running, once, later (it may queue more).
   */
  private flushPending(): void {
    const outbound = this.outbound
    if (!outbound.pending) return
    if (!this.inbound.handling) outbound.flush()
    else outbound.queueFlush()
  }

  now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  // --- lifecycle core ---

  fail(error: ConnectionError): void {
    if (this.failure !== undefined) return
    this.failure = error
    this.end(Cause.fail(error))
    this.inbound.release()
    this.outbound.release()
  }

  /** Ends with `cause` (a failure, an interruption): tells the driver, once. */
  end(cause: Cause.Cause<unknown>): void {
    if (this.endCause !== undefined) return
    this.endCause = cause
    const ended = this.ended
    this.ended = undefined
    ended?.(cause)
  }

  /** Whether it ended by a deliberate close with everything written: close gracefully, not destroy. */
  get deliberate(): boolean {
    const closing = this.outbound.closing
    return closing !== undefined && this.failure === closing && this.outbound.size() === 0
  }

  /** Starts reading with `handler`, liveness at `now`; returns liveness's first due time. */
  begin(handler: Handler<M>, startHandler: (effect: Effect.Effect<void, unknown, any>) => void): number | undefined {
    this.inbound.start(handler, startHandler)
    return this.liveness.enabled ? this.liveness.start(this.now()) : undefined
  }

  // --- Transport.Handlers (the callback driver) ---

  onData(chunk: Uint8Array): void {
    const outbound = this.outbound
    outbound.inData = true
    try {
      this.inbound.onData(chunk)
    } finally {
      outbound.inData = false
    }
    // What a synchronous handler queued for this chunk goes out now, inside
    // the data callback, not after the callbacks Node queues behind it.
    this.flushPending()
  }

  onEnd(): void {
    this.inbound.onEnd()
  }

  onError(error: Socket.SocketError | FrameError): void {
    this.fail(error)
  }

  // --- Connection ---

  private closedError(): SlowConsumer | Kicked | ProtocolError {
    const failure = this.failure
    return failure !== undefined && failure._tag === "SlowConsumer"
      ? failure
      : this.outbound.closing ?? new Kicked({ reason: failure ? failure.message : "connection closed" })
  }

  unsafeSend(message: M | Wire.Encoded): boolean {
    return this.outbound.pushMessage(message) === true
  }

  unsafeSendBurst(messages: ReadonlyArray<M | Wire.Encoded>): boolean {
    return this.outbound.pushBurst(messages) === true
  }

  send(message: M | Wire.Encoded): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> {
    return Effect.suspend(() => {
      const attempt = (): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> => {
        const outbound = this.outbound
        if (!outbound.accepts()) return Effect.fail(this.closedError())
        if (outbound.holds()) return Effect.flatMap(outbound.whenRoom(), attempt)
        const queued = outbound.pushMessage(message)
        if (queued === true) return Effect.void
        if (queued === false) return Effect.fail(this.closedError())
        return Effect.fail(new ProtocolError({ reason: "EncodeFailed", detail: queued.message }))
      }
      return attempt()
    })
  }

  close(reason: string): void {
    if (this.closeRequested || this.failure !== undefined) return
    this.closeRequested = true
    this.inbound.paused = true
    // Let the handler in flight finish (and queue its replies) first.
    this.inbound.whenIdleDo(() => this.outbound.closeWith(new Kicked({ reason })))
  }

  abort(error: ConnectionError): void {
    this.fail(error)
  }

  clearDeadline(): void {
    this.liveness.clearDeadline(this.now())
  }

  get pauseInput(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.inbound.paused = true
      return this.inbound.whenIdle
    })
  }

  get flushed(): Effect.Effect<void> {
    return this.outbound.flushed
  }

  queued(): number {
    return this.outbound.size()
  }

  isOpen(): boolean {
    return this.failure === undefined && !this.closeRequested
  }

  run<E = never, R = never>(
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ): Effect.Effect<never, ConnectionError | E, R> {
    const transport = this.transport
    return transport !== undefined && this.options.driver !== "fiber"
      ? CallbackDriver.run(this, transport, handler)
      : FiberDriver.run(this, handler)
  }

  unsafeStart<E = never, R = never>(
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ): () => void {
    const transport = this.transport
    return transport !== undefined && this.options.driver !== "fiber"
      ? CallbackDriver.start(this, transport, runtime, handler, onExit)
      : FiberDriver.start(this, runtime, handler, onExit)
  }
}

/** @internal */
export const defaultOutboundCapacity = 1024
/** @internal */
export const defaultOutboundBytes = 16 * 1024 * 1024
/** @internal */
export const defaultMaxInbound = 4096
/** @internal */
export const defaultMaxInboundBytes = 8 * 1024 * 1024
