/**
 * A connection: framed, decoded, heartbeated messages over an
 * `@effect/platform` `Socket`. `run` ends with the first failure, typed:
 * reading, writing and the heartbeat are joined fail-fast, the others stop,
 * the socket is closed (destroyed outright unless the close was a
 * deliberate, flushed one).
 *
 * Over a socket that carries a {@link Transport.Transport} (the sockets of
 * `@tether/node`'s server), the connection is one object driven by the
 * transport's callbacks and the server's heartbeat scheduler: no fiber while
 * idle. Over any other socket, `run` forks a reader, a writer and a
 * heartbeat fiber into a `FiberSet`. The same test suites run against both.
 *
 * The hot path is synchronous: each TCP chunk is framed and decoded inside
 * the socket's data callback, decoded messages are handed to the handler in
 * batches (a fiber only for handlers that return an Effect), and everything
 * queued for the peer goes out as one socket write per turn.
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import { FrameError, gatherThreshold } from "@tether/protocol/Frame"
import type * as Frame from "@tether/protocol/Frame"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import {
  type ConnectionError,
  DeadlineExceeded,
  HeartbeatTimeout,
  Kicked,
  PeerClosed,
  ProtocolError,
  SlowConsumer
} from "./ConnectionError.js"
import type * as Heartbeat from "./Heartbeat.js"
import type * as HeartbeatScheduler from "./HeartbeatScheduler.js"
import * as Metrics from "./Metrics.js"
import * as Transport from "./Transport.js"

/**
 * What to do when a peer's outbound queue is full.
 * - `disconnect`: close it with `SlowConsumer` (the default: one slow reader
 *   must not hold up anyone else).
 * - `backpressure`: `send` suspends until there is room. The non-suspending
 *   path (`offer`, used by broadcast) still disconnects.
 *
 * @since 0.1.0
 * @category models
 */
export type OverflowPolicy = "backpressure" | "disconnect"

/**
 * @since 0.1.0
 * @category models
 */
export interface OutboundOptions {
  /** Messages queued for the peer before the overflow policy applies (default 1024). */
  readonly capacity?: number
  readonly overflow?: OverflowPolicy
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<M> {
  readonly framing: Frame.Framing
  readonly codec: Codec.Codec<M>
  readonly heartbeat?: Heartbeat.Policy
  /** Required when the policy pings or answers pings. */
  readonly dialect?: Heartbeat.Dialect<M>
  readonly outbound?: OutboundOptions
  /**
   * Messages decoded but not yet handled before the connection fails with
   * `ProtocolError("InboundOverflow")` (default 4096): a peer that writes
   * faster than it is served cannot make the process buffer without bound.
   */
  readonly maxInbound?: number
  /** The same bound in payload bytes (default 8 MiB). */
  readonly maxInboundBytes?: number
  /** A deadline from the start of `run`, e.g. for login; lift it with `clearDeadline`. */
  readonly deadline?: { readonly after: Duration.DurationInput; readonly what: string }
  /** Called once the socket is open (for a client: connected). */
  readonly onOpen?: () => void
  /**
   * Run the heartbeat on a scheduler shared by many connections (the server
   * passes its own) instead of a fiber of this connection.
   */
  readonly heartbeatScheduler?: HeartbeatScheduler.HeartbeatScheduler | undefined
  /**
   * Write straight to the transport, `done` called once the bytes are flushed
   * (Node: `net.Socket.write`). When given, writes need no writer fiber:
   * everything queued in one turn of the event loop goes out as one write,
   * scheduled with a microtask. `@tether/node` supplies it for accepted sockets.
   */
  readonly directWrite?: ((bytes: Uint8Array, done: (error?: Error | null) => void) => void) | undefined
  /** Largest number of bytes gathered into one socket write (default 1 MiB). */
  readonly maxWriteBytes?: number
}

/**
 * Default outbound capacity, in messages.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultOutboundCapacity = 1024

/**
 * Default inbound limit, in messages.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultMaxInbound = 4096

/**
 * Counters of one connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Connection<M> {
  readonly id: number
  /**
   * Queue a message for the peer. Under `disconnect` a full queue closes the
   * connection with `SlowConsumer` (and this fails with it); under
   * `backpressure` it waits for room.
   */
  readonly send: (message: M) => Effect.Effect<void, SlowConsumer | Kicked | ProtocolError>
  /** Queue without suspending; false (and the connection closes as a slow consumer) when full. */
  readonly offer: (message: M) => boolean
  /**
   * `offer` for a payload encoded once for many connections (broadcast): the
   * codec's bytes and, where the codec has it, the same payload as text
   * (`Codec.encodeText`), which a connection over a text framing queues
   * instead (to be encoded with the rest of its batch).
   */
  readonly offerPayload: (payload: Uint8Array, text?: string) => boolean
  /**
   * Close deliberately: stop handing input to the handler, write out what is
   * queued, then end `run` with `Kicked { reason }` and close the socket.
   */
  readonly close: (reason: string) => void
  /** Close at once with `error`: nothing more is written, the socket is destroyed. */
  readonly abort: (error: ConnectionError) => void
  /** Lift the deadline set with `options.deadline`. */
  readonly clearDeadline: () => void
  /** Stop handing input to the handler and wait until the handler in flight returns. */
  readonly pauseInput: Effect.Effect<void>
  /** Wait until every queued message has been written (or the connection ended). */
  readonly flushed: Effect.Effect<void>
  /**
   * Runs the connection. The handler gets decoded messages in batches, in
   * order. A handler that returns nothing ran synchronously, inside the data
   * callback, and costs no fiber; one that returns an Effect is run in the
   * connection's handler fiber, and later batches wait for it.
   */
  readonly run: <E = never, R = never>(
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ) => Effect.Effect<never, ConnectionError | E, R>
  /**
   * `run` without a fiber of its own: starts the connection with `runtime`
   * (for the handler's fibers) and calls `onExit` once it has ended, its
   * socket closed and its fibers done. Returns a function that interrupts
   * it. Over a {@link Transport.Transport} an idle connection then costs no
   * fiber at all; over any other socket this forks `run`.
   */
  readonly unsafeStart: <E = never, R = never>(
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ) => () => void
  /**
   * `send` without an Effect when there is room: queues at once and returns
   * undefined; otherwise returns what `send` would do (wait for room under
   * `backpressure`, fail under `disconnect`). For synchronous handlers.
   */
  readonly offerOrSend: (message: M) => Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> | undefined
  readonly stats: Readonly<Stats>
  /** Messages queued for the peer and not yet written. */
  readonly queued: () => number
  readonly isOpen: () => boolean
}

let nextId = 1

/**
 * Wraps a socket. Nothing happens until `run`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <M>(socket: Socket.Socket, options: Options<M>): Effect.Effect<Connection<M>> =>
  Effect.clockWith((clock) => Effect.sync(() => new ConnectionImpl(socket, options, clock)))

/**
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = <M>(socket: Socket.Socket, options: Options<M>, now: () => number): Connection<M> =>
  new ConnectionImpl(socket, options, { unsafeCurrentTimeMillis: now })

const isLarge = (payload: Uint8Array | string) => typeof payload !== "string" && payload.length >= gatherThreshold

/** Text payloads in a batch that is not all text (bytes offered without their text among them). */
const textEncoder = new TextEncoder()
const toBytes = (payload: Uint8Array | string): Uint8Array =>
  typeof payload === "string" ? textEncoder.encode(payload) : payload

/** Metric updates without extra tags (one shared array: no allocation per update). */
const noTags: ReadonlyArray<never> = []

type Handler<M> = (batch: ReadonlyArray<M>) => Effect.Effect<void, any, any> | void

const releaseAll = (waiters: Array<() => void>) => {
  for (const w of waiters) w()
}

const waitFor = (register: (resume: () => void) => void) =>
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

/**
 * One connection's state, a plain object with prototype methods: an idle
 * connection is this object, its decoder and its queues, with no closures
 * or fibers of its own (measured: a closure-per-operation design cost ~3 KiB
 * more per connection).
 */
class ConnectionImpl<M> implements Connection<M>, Transport.Handlers {
  readonly id = nextId++
  readonly stats: Stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  private readonly transport: Transport.Transport | undefined
  private readonly capacity: number
  private readonly countsAny: boolean
  private readonly answers: boolean

  // --- state shared by the data callback and the fibers (one JS thread) ---
  private failure: ConnectionError | undefined = undefined
  private fiberSet: FiberSet.FiberSet<unknown, unknown> | undefined = undefined
  private closeRequested = false
  private closing: Kicked | undefined = undefined
  private open = false
  private lastHeard = 0
  private lastPong = 0
  private deadlineAt: number | undefined = undefined
  // inbound: decoded messages not yet handed to the handler
  private inbound: Array<M> = []
  private inboundBytes = 0
  private handling = false
  private paused = false
  private idleWaiters: Array<() => void> | undefined = undefined
  // outbound: encoded payloads not yet written (text from a text codec, see Codec.encodeText)
  private outbound: Array<Uint8Array | string> = []
  private readonly textual: boolean
  private wakeWriter: (() => void) | undefined = undefined
  private writing = false
  private flushScheduled = false
  private flushQueued = false
  private inData = false
  private roomWaiters: Array<() => void> | undefined = undefined
  private flushWaiters: Array<() => void> | undefined = undefined
  // the transport path: how the connection reports its end
  private ended: ((cause: Cause.Cause<unknown>) => void) | undefined = undefined
  private endCause: Cause.Cause<unknown> | undefined = undefined
  private flushTask: (() => void) | undefined = undefined
  private writeDone: ((error?: Error | null) => void) | undefined = undefined
  // the reader and the handler
  private decoder: Frame.Decoder<Uint8Array | string> | undefined = undefined
  // frames arrive as text (Framing.textDecoder + Codec.decodeText): each chunk is UTF-8 decoded once
  private readonly textIn: boolean
  private handler: Handler<M> | undefined = undefined
  private handleLoop: Effect.Effect<void, unknown, any> | undefined = undefined
  private startHandler: ((effect: Effect.Effect<void, unknown, any>) => void) | undefined = undefined

  constructor(
    private readonly socket: Socket.Socket,
    private readonly options: Options<M>,
    private readonly clock: { readonly unsafeCurrentTimeMillis: () => number }
  ) {
    const policy = options.heartbeat
    if (policy && (policy.pinger !== undefined || policy.counts === "pong") && options.dialect === undefined) {
      throw new Error(`heartbeat policy "${policy.name}" needs a dialect`)
    }
    this.transport = Transport.fromSocket(socket)
    this.capacity = options.outbound?.capacity ?? defaultOutboundCapacity
    this.textual = options.codec.encodeText !== undefined && options.framing.encodeTexts !== undefined
    this.textIn = options.codec.decodeText !== undefined && options.framing.textDecoder !== undefined
    this.countsAny = policy?.counts !== "pong"
    this.answers = policy?.answers === true && options.dialect !== undefined
  }

  private now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  // --- failure and waiters ---

  private fail(error: ConnectionError): void {
    if (this.failure !== undefined) return
    this.failure = error
    if (this.fiberSet !== undefined) Deferred.unsafeDone(this.fiberSet.deferred, Exit.fail(error))
    this.endWith(Cause.fail(error))
    this.releaseWaiters()
  }

  private endWith(cause: Cause.Cause<unknown>): void {
    if (this.endCause !== undefined) return
    this.endCause = cause
    const end = this.ended
    if (end !== undefined) {
      this.ended = undefined
      end(cause)
    }
  }

  private releaseWaiters(): void {
    const room = this.roomWaiters
    const flush = this.flushWaiters
    const idle = this.idleWaiters
    this.roomWaiters = this.flushWaiters = this.idleWaiters = undefined
    if (room) releaseAll(room)
    if (flush) releaseAll(flush)
    if (idle) releaseAll(idle)
  }

  private onIdle(waiter: () => void): void {
    ;(this.idleWaiters ??= []).push(waiter)
  }

  // --- outbound ---

  private get direct(): boolean {
    return this.transport !== undefined || this.options.directWrite !== undefined
  }

  /** Makes the writer look at the queue: wakes the writer fiber, or schedules a direct flush. */
  private kickWriter(): void {
    if (this.direct) {
      if (!this.flushScheduled && !this.writing) {
        this.flushScheduled = true
        // Inside the data callback, onData flushes (or queues) at its end.
        if (!this.inData) this.queueFlush()
      }
    } else if (this.wakeWriter !== undefined) {
      const wake = this.wakeWriter
      this.wakeWriter = undefined
      wake()
    }
  }

  /** One flush microtask at a time (Node's queueMicrotask costs an AsyncResource and a bound function). */
  private queueFlush(): void {
    if (this.flushQueued) return
    this.flushQueued = true
    // (A flush that ran meanwhile, from onData, leaves nothing for this one.)
    queueMicrotask(this.flushTask ??= () => {
      this.flushQueued = false
      if (this.flushScheduled) this.flushDirect()
    })
  }

  private enqueue(payload: Uint8Array | string): boolean {
    if (this.failure !== undefined || this.closing !== undefined) return false
    if (this.outbound.length >= this.capacity) {
      this.fail(new SlowConsumer({ queued: this.outbound.length, capacity: this.capacity }))
      return false
    }
    this.outbound.push(payload)
    this.kickWriter()
    return true
  }

  /**
   * Takes the next batch off the queue (up to maxWriteBytes) and frames it as
   * one buffer or, with `gather` and a payload of at least
   * `Frame.gatherThreshold` bytes, as buffers for one gathered write that
   * references large payloads instead of copying them.
   */
  private takeBatch(gather: false): Uint8Array | FrameError
  private takeBatch(gather: boolean): Uint8Array | Array<Uint8Array> | FrameError
  private takeBatch(gather: boolean): Uint8Array | Array<Uint8Array> | FrameError {
    const maxWriteBytes = this.options.maxWriteBytes ?? 1024 * 1024
    const outbound = this.outbound
    let batch: Array<Uint8Array | string>
    // Text is counted in UTF-16 units: a batch of text may exceed maxWriteBytes up to 3x.
    let size = 0
    let count = 0
    let texts = 0
    while (count < outbound.length && (count === 0 || size + outbound[count]!.length <= maxWriteBytes)) {
      const payload = outbound[count]!
      size += payload.length
      if (typeof payload === "string") texts++
      count++
    }
    if (count === outbound.length) {
      batch = outbound
      this.outbound = []
    } else {
      batch = outbound.slice(0, count)
      this.outbound = outbound.slice(count)
    }
    const room = this.roomWaiters
    if (room !== undefined) {
      this.roomWaiters = undefined
      releaseAll(room)
    }
    const framing = this.options.framing
    const allocate = this.transport?.allocate
    let bytes: Uint8Array | Array<Uint8Array> | FrameError
    let length = 0
    if (texts === count && framing.encodeTexts !== undefined) {
      bytes = framing.encodeTexts(batch as Array<string>)
      if (bytes instanceof FrameError) return bytes
      length = bytes.length
    } else if (texts > 0) {
      bytes = framing.encodeAll(batch.map(toBytes), allocate)
      if (bytes instanceof FrameError) return bytes
      length = bytes.length
    } else if (gather && framing.encodeChunks !== undefined && size >= gatherThreshold && batch.some(isLarge)) {
      bytes = framing.encodeChunks(batch as Array<Uint8Array>, allocate)
      if (bytes instanceof FrameError) return bytes
      for (const chunk of bytes) length += chunk.length
    } else {
      bytes = framing.encodeAll(batch as Array<Uint8Array>, allocate)
      if (bytes instanceof FrameError) return bytes
      length = bytes.length
    }
    this.stats.framesOut += batch.length
    this.stats.bytesOut += length
    Metrics.framesOut.unsafeUpdate(batch.length, noTags)
    Metrics.bytesOut.unsafeUpdate(length, noTags)
    return bytes
  }

  /** The queue is empty: release flush waiters; a requested close happens now. */
  private writerIdle(): Kicked | undefined {
    this.writing = false
    const waiters = this.flushWaiters
    if (waiters !== undefined) {
      this.flushWaiters = undefined
      releaseAll(waiters)
    }
    return this.closing
  }

  private flushDirect(): void {
    this.flushScheduled = false
    // A transport is written only once the connection runs (as a socket's writer waits for run).
    if (this.failure !== undefined || this.writing || (this.transport !== undefined && !this.open)) return
    const transport = this.transport
    // Batches (of up to maxWriteBytes) while the transport takes them at once.
    while (this.outbound.length > 0) {
      const bytes = this.takeBatch(transport?.writev !== undefined)
      if (bytes instanceof FrameError) return this.fail(bytes)
      this.writing = true
      const done = this.writeDone ??= (error?: Error | null) => {
        this.writing = false
        if (error) return this.fail(new Socket.SocketGenericError({ reason: "Write", cause: error }))
        this.flushDirect()
      }
      if (transport === undefined) return this.options.directWrite!(bytes as Uint8Array, done)
      const taken = Array.isArray(bytes) ? transport.writev!(bytes, done) : transport.write(bytes, done)
      if (!taken) return
      this.writing = false
      if (this.failure !== undefined) return
    }
    const closed = this.writerIdle()
    if (closed !== undefined) this.fail(closed)
  }

  private encode(message: M): Uint8Array | string | ProtocolError {
    const codec = this.options.codec
    const payload = this.textual ? codec.encodeText!(message) : codec.encode(message)
    return typeof payload === "string" || payload instanceof Uint8Array
      ? payload
      : new ProtocolError({ reason: "EncodeFailed", detail: payload.message })
  }

  offer(message: M): boolean {
    const payload = this.encode(message)
    return !(payload instanceof ProtocolError) && this.enqueue(payload)
  }

  offerPayload(payload: Uint8Array, text?: string): boolean {
    return this.enqueue(this.textual && text !== undefined ? text : payload)
  }

  private closedError(): SlowConsumer | Kicked | ProtocolError {
    const failure = this.failure
    return failure !== undefined && failure._tag === "SlowConsumer"
      ? failure
      : this.closing ?? new Kicked({ reason: failure ? failure.message : "connection closed" })
  }

  send(message: M): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> {
    return Effect.suspend(() => {
      const payload = this.encode(message)
      if (payload instanceof ProtocolError) return Effect.fail(payload)
      const attempt = (): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> => {
        if (this.failure !== undefined || this.closing !== undefined) return Effect.fail(this.closedError())
        if (this.options.outbound?.overflow === "backpressure" && this.outbound.length >= this.capacity) {
          return Effect.flatMap(waitFor((resume) => (this.roomWaiters ??= []).push(resume)), attempt)
        }
        return this.enqueue(payload) ? Effect.void : Effect.fail(this.closedError())
      }
      return attempt()
    })
  }

  offerOrSend(message: M): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> | undefined {
    if (this.failure !== undefined || this.closing !== undefined || this.outbound.length >= this.capacity) {
      return this.send(message)
    }
    const payload = this.encode(message)
    if (payload instanceof ProtocolError) return Effect.fail(payload)
    this.enqueue(payload)
    return undefined
  }

  // --- reader: runs synchronously in the socket's data callback ---

  /** Hands the inbound batch to the handler: synchronously if it allows, else in the handler fiber. */
  private dispatch(): void {
    const batch = this.inbound
    this.inbound = []
    this.inboundBytes = 0
    let result: Effect.Effect<void, unknown, any> | void
    try {
      result = this.handler!(batch)
    } catch (defect) {
      result = Effect.die(defect)
    }
    if (result !== undefined) {
      this.handling = true
      this.startHandler!(Effect.flatMap(result, () => this.handleLoop!))
    }
  }

  onData(chunk: Uint8Array): void {
    if (this.failure !== undefined) return
    this.inData = true
    try {
      this.receive(chunk)
    } finally {
      this.inData = false
    }
    // What a synchronous handler queued for this chunk goes out now, inside
    // the data callback (as a raw server writes), not after the callbacks
    // Node queues behind it, and without a microtask per chunk.
    if (this.flushScheduled) {
      if (!this.handling && this.transport !== undefined) this.flushDirect()
      else this.queueFlush()
    }
  }

  private receive(chunk: Uint8Array): void {
    const stats = this.stats
    stats.bytesIn += chunk.length
    const frames = this.decoder!.push(chunk)
    if (frames instanceof FrameError) return this.fail(frames)
    if (frames.length === 0) return
    stats.framesIn += frames.length
    Metrics.framesIn.unsafeUpdate(frames.length, noTags)
    Metrics.bytesIn.unsafeUpdate(chunk.length, noTags)
    const at = this.now()
    if (this.countsAny) this.lastHeard = at
    const codec = this.options.codec
    const dialect = this.options.dialect
    const inbound = this.inbound
    const textIn = this.textIn
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!
      this.inboundBytes += frame.length // text: UTF-16 units, close enough for the bound
      const message = textIn ? codec.decodeText!(frame as string) : codec.decode(frame as Uint8Array)
      if (message instanceof Error) return this.fail(message as Codec.DecodeError)
      if (dialect !== undefined) {
        if (dialect.isPong(message)) {
          this.lastPong = at
          if (!this.countsAny) this.lastHeard = at
        }
        if (this.answers) {
          const reply = dialect.replyTo(message)
          if (reply !== undefined && !this.offer(reply)) return
        }
        if (dialect.isControl(message)) continue
      }
      inbound.push(message)
    }
    const maxInbound = this.options.maxInbound ?? defaultMaxInbound
    const maxInboundBytes = this.options.maxInboundBytes ?? 8 * 1024 * 1024
    if (inbound.length > maxInbound || this.inboundBytes > maxInboundBytes) {
      return this.fail(
        new ProtocolError({
          reason: "InboundOverflow",
          detail: `${inbound.length} messages (${this.inboundBytes} bytes) waiting to be handled (limits ${maxInbound}, ${maxInboundBytes} bytes)`
        })
      )
    }
    if (inbound.length === 0) this.inboundBytes = 0
    if (!this.handling && !this.paused && inbound.length > 0) this.dispatch()
  }

  onEnd(): void {
    if (this.failure !== undefined) return
    const end = () => this.fail(this.decoder!.end() ?? new PeerClosed())
    if (this.handling) this.onIdle(end)
    else end()
  }

  onError(error: Socket.SocketError): void {
    this.fail(error)
  }

  private handlerIdle(): void {
    this.handling = false
    const waiters = this.idleWaiters
    if (waiters !== undefined) {
      this.idleWaiters = undefined
      releaseAll(waiters)
    }
  }

  private makeHandleLoop(): Effect.Effect<void, unknown, any> {
    const loop: Effect.Effect<void, unknown, any> = Effect.suspend(() => {
      if (this.paused || this.inbound.length === 0 || this.failure !== undefined) {
        this.handlerIdle()
        return Effect.void
      }
      const batch = this.inbound
      this.inbound = []
      this.inboundBytes = 0
      const result = this.handler!(batch)
      return result === undefined ? loop : Effect.flatMap(result, () => loop)
    })
    return Effect.onInterrupt(loop, () => Effect.sync(() => this.handlerIdle()))
  }

  private get whenHandlerIdle(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.handling && this.failure === undefined ? waitFor((resume) => this.onIdle(resume)) : Effect.void
    )
  }

  // --- writer fiber (platform sockets): one socket write per turn, of everything queued ---
  private writerLoop(write: (chunk: Uint8Array | Socket.CloseEvent) => Effect.Effect<void, Socket.SocketError>) {
    const turn: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
      if (this.outbound.length === 0) {
        const closed = this.writerIdle()
        if (closed !== undefined) return Effect.fail(closed)
        return Effect.flatMap(waitFor((resume) => (this.wakeWriter = resume)), () => turn)
      }
      this.writing = true
      const bytes = this.takeBatch(false)
      if (bytes instanceof FrameError) return Effect.fail(bytes)
      return Effect.flatMap(write(bytes), () => turn)
    })
    return turn
  }

  // --- heartbeat: pings on the policy's schedule, watches "last heard" and the deadline ---

  /**
   * The heartbeat as a step function: given the time, it does what is due and
   * answers when it is next due (undefined: never again). Run by a fiber of
   * this connection, or by a scheduler shared by many connections.
   */
  private makeBeat(): Beat | undefined {
    const policy = this.options.heartbeat
    if (policy?.timeoutMs === undefined && policy?.pinger === undefined && this.deadlineAt === undefined) return undefined
    return new Beat(this, policy?.timeoutMs, policy?.pinger?.())
  }

  /** @internal called by {@link Beat} */
  beat(at: number, beat: Beat): number | undefined {
    if (this.failure !== undefined) return undefined
    const timeoutMs = beat.timeoutMs
    if (timeoutMs !== undefined && at - this.lastHeard >= timeoutMs) {
      Metrics.heartbeatTimeouts.unsafeUpdate(1, noTags)
      this.fail(new HeartbeatTimeout({ silentForMs: at - this.lastHeard, timeoutMs }))
      return undefined
    }
    if (this.deadlineAt !== undefined && at >= this.deadlineAt) {
      const deadline = this.options.deadline!
      this.fail(new DeadlineExceeded({ what: deadline.what, afterMs: Duration.toMillis(deadline.after) }))
      return undefined
    }
    const pinger = beat.pinger
    if (pinger !== undefined && at >= beat.nextPingAt) {
      const missed = beat.lastPing !== undefined && this.lastPong < beat.lastPing
      // A full queue fails the connection inside offer; a closing one skips
      // the ping but keeps watching liveness while it flushes.
      this.offer(this.options.dialect!.ping(beat.seq))
      beat.seq = (beat.seq + 1) >>> 0
      beat.lastPing = at
      beat.nextPingAt = at + pinger.next(missed, at)
    }
    return this.nextDue(beat)
  }

  /** @internal */
  nextDue(beat: Beat): number | undefined {
    let due = beat.nextPingAt
    if (beat.timeoutMs !== undefined) due = Math.min(due, this.lastHeard + beat.timeoutMs)
    if (this.deadlineAt !== undefined) due = Math.min(due, this.deadlineAt)
    return due === Infinity ? undefined : due
  }

  /** The per-connection heartbeat fiber: sleeps until the beat is due, runs it. */
  private heartbeatFiber(beat: Beat): Effect.Effect<void> {
    const tick: Effect.Effect<void> = Effect.suspend(() => {
      const at = this.now()
      const due = beat.run(at)
      if (due === undefined) return this.failure === undefined ? Effect.never : Effect.void
      return Effect.flatMap(Effect.sleep(Math.max(0, due - at)), () => tick)
    })
    return tick
  }

  private begin(handler: Handler<M>): void {
    const start = this.now()
    this.lastHeard = start
    this.lastPong = start
    const deadline = this.options.deadline
    if (deadline !== undefined) this.deadlineAt = start + Duration.toMillis(deadline.after)
    const framing = this.options.framing
    this.decoder = this.textIn ? framing.textDecoder!() : framing.decoder()
    this.handler = handler
    this.handleLoop = this.makeHandleLoop()
  }

  // --- running over a transport: no fiber while idle ---

  /**
   * Starts the connection over a {@link Transport.Transport}: it is driven
   * by the transport's callbacks and the shared heartbeat scheduler, so an
   * idle connection has no fiber at all. A handler fiber exists only while
   * an Effect-returning handler runs. `onExit` is called once, after the
   * transport is closed and every fiber of the connection has ended.
   */
  private startTransport<E, R>(
    transport: Transport.Transport,
    runtime: Runtime.Runtime<R>,
    handler: Handler<M>,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ): () => void {
    const fork = Runtime.runFork(runtime)
    let handlerFiber: Fiber.RuntimeFiber<void, unknown> | undefined
    let heartbeat: Fiber.RuntimeFiber<void, unknown> | undefined
    let cancelBeat: (() => void) | undefined
    this.begin(handler)
    this.startHandler = (effect) => {
      const fiber = fork(effect)
      handlerFiber = fiber
      fiber.addObserver((exit) => {
        if (handlerFiber === fiber) handlerFiber = undefined
        if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
          this.failure ??= Option.getOrElse(
            Cause.failureOption(exit.cause),
            () => new Kicked({ reason: "handler died" })
          ) as ConnectionError
          this.endWith(exit.cause)
        }
      })
    }
    Metrics.connectionsActive.unsafeModify(1, noTags)

    const finish = (cause: Cause.Cause<unknown>) => {
      this.failure ??= new Kicked({ reason: "interrupted" })
      this.releaseWaiters()
      cancelBeat?.()
      const closing = this.closing
      const deliberate = closing !== undefined && this.failure === closing && this.outbound.length === 0
      if (deliberate) transport.end()
      else transport.destroy()
      Metrics.connectionsActive.unsafeModify(-1, noTags)
      const exit = Exit.failCause(cause) as Exit.Exit<never, ConnectionError | E>
      const fibers = [handlerFiber, heartbeat].filter((f) => f !== undefined)
      if (fibers.length === 0) return onExit(exit)
      let left = fibers.length
      for (const fiber of fibers) {
        fiber.addObserver(() => {
          if (--left === 0) onExit(exit)
        })
        fiber.unsafeInterruptAsFork(FiberId.none)
      }
    }
    if (this.endCause !== undefined) {
      // Failed (or closed and flushed) before it started.
      finish(this.endCause)
    } else {
      this.ended = finish
      this.open = true
      transport.start(this)
      this.options.onOpen?.()
      if (this.outbound.length > 0 || this.closing !== undefined) this.kickWriter()
      const beat = this.makeBeat()
      if (beat !== undefined && this.failure === undefined) {
        const scheduler = this.options.heartbeatScheduler
        if (scheduler !== undefined) cancelBeat = scheduler.add(beat, beat.first)
        else heartbeat = fork(this.heartbeatFiber(beat))
      }
    }
    return () => this.endWith(Cause.interrupt(FiberId.none))
  }

  unsafeStart<E = never, R = never>(
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ): () => void {
    if (this.transport !== undefined) return this.startTransport(this.transport, runtime, handler, onExit)
    const fiber = Runtime.runFork(runtime)(this.run(handler))
    fiber.addObserver(onExit)
    return () => fiber.unsafeInterruptAsFork(FiberId.none)
  }

  private runTransport<E, R>(
    transport: Transport.Transport,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ): Effect.Effect<never, ConnectionError | E, R> {
    return Effect.flatMap(Effect.runtime<R>(), (runtime) =>
      Effect.async<never, ConnectionError | E>((resume) => {
        let done: Exit.Exit<never, ConnectionError | E> | undefined
        let interrupted: (() => void) | undefined
        const stop = this.startTransport<E, R>(transport, runtime, handler, (exit) => {
          done = exit
          if (interrupted !== undefined) interrupted()
          else resume(exit)
        })
        return Effect.async<void>((resumeCancel) => {
          if (done !== undefined) return resumeCancel(Effect.void)
          interrupted = () => resumeCancel(Effect.void)
          stop()
        })
      }))
  }

  // --- running over a platform socket: reader, writer and heartbeat fibers in a FiberSet ---

  run<E = never, R = never>(
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ): Effect.Effect<never, ConnectionError | E, R> {
    if (this.transport !== undefined) return this.runTransport(this.transport, handler)
    const self = this
    const socket = this.socket
    return Effect.scoped(
      Effect.gen(function*() {
        const write = yield* socket.writer
        const set = yield* FiberSet.make<unknown, unknown>()
        self.fiberSet = set
        self.begin(handler)
        const runFork = (yield* FiberSet.runtime(set)<R>()) as (effect: Effect.Effect<void, unknown, any>) => unknown
        self.startHandler = (effect) => void runFork(effect)
        Metrics.connectionsActive.unsafeModify(1, noTags)
        yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.connectionsActive.unsafeModify(-1, noTags)))
        // Failed (or closed) before running: end at once, but still through
        // the reader, so the socket is opened and closed the normal way.
        if (self.failure !== undefined) Deferred.unsafeDone(set.deferred, Exit.fail(self.failure))

        const reader = yield* FiberSet.run(
          set,
          socket.run((chunk) => self.onData(chunk), {
            onOpen: Effect.sync(() => {
              self.open = true
              self.options.onOpen?.()
            })
          }).pipe(
            Effect.zipRight(self.whenHandlerIdle),
            Effect.zipRight(Effect.suspend(() => Effect.fail(self.decoder!.end() ?? new PeerClosed())))
          )
        )
        if (!self.direct) yield* FiberSet.run(set, self.writerLoop(write))
        else if (self.outbound.length > 0 || self.closing !== undefined) self.kickWriter()
        const beat = self.makeBeat()
        if (beat !== undefined) {
          const scheduler = self.options.heartbeatScheduler
          if (scheduler !== undefined) {
            const cancel = scheduler.add(beat, beat.first)
            yield* Effect.addFinalizer(() => Effect.sync(cancel))
          } else {
            yield* FiberSet.run(set, self.heartbeatFiber(beat))
          }
        }

        // Runs before the FiberSet closes: a connection that did not end by a
        // deliberate, flushed close is destroyed outright, so a peer that does
        // not read cannot keep it (and its buffers) alive.
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            const closing = self.closing
            const deliberate = closing !== undefined && self.failure === closing && self.outbound.length === 0
            if (deliberate || !self.open || reader.unsafePoll() !== null) return Effect.void
            return Effect.ignore(write(new Socket.CloseEvent(1000)))
          })
        )
        yield* FiberSet.join(set)
        return yield* Effect.die("unreachable: a connection's fibers never all succeed")
      }).pipe(
        Effect.tapErrorCause((cause) =>
          Effect.sync(() => {
            self.failure ??= Option.getOrElse(
              Cause.failureOption(cause),
              () => new Kicked({ reason: "interrupted" })
            ) as ConnectionError
            self.releaseWaiters()
          })
        )
      )
    ) as Effect.Effect<never, ConnectionError | E, R>
  }

  // --- control ---

  close(reason: string): void {
    if (this.closeRequested || this.failure !== undefined) return
    this.closeRequested = true
    this.paused = true
    // Let the handler in flight finish (and queue its replies) first.
    const markClosing = () => {
      if (this.failure !== undefined) return
      this.closing = new Kicked({ reason })
      this.kickWriter()
    }
    if (this.handling) this.onIdle(markClosing)
    else markClosing()
  }

  abort(error: ConnectionError): void {
    this.fail(error)
  }

  clearDeadline(): void {
    this.deadlineAt = undefined
  }

  get pauseInput(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.paused = true
      return this.whenHandlerIdle
    })
  }

  get flushed(): Effect.Effect<void> {
    return Effect.suspend(() =>
      (this.outbound.length > 0 || this.writing) && this.failure === undefined
        ? waitFor((resume) => (this.flushWaiters ??= []).push(resume))
        : Effect.void
    )
  }

  queued(): number {
    return this.outbound.length
  }

  isOpen(): boolean {
    return this.failure === undefined && !this.closeRequested
  }
}

/** A connection's heartbeat state, run by a fiber or a shared scheduler. */
class Beat implements HeartbeatScheduler.Beat {
  seq = 0
  lastPing: number | undefined = undefined
  nextPingAt: number
  readonly first: number
  constructor(
    private readonly connection: ConnectionImpl<any>,
    readonly timeoutMs: number | undefined,
    readonly pinger: Heartbeat.Pinger | undefined
  ) {
    this.nextPingAt = pinger !== undefined ? connection["now"]() + pinger.first() : Infinity
    this.first = connection.nextDue(this) ?? Infinity
  }
  run(at: number): number | undefined {
    return this.connection.beat(at, this)
  }
}
