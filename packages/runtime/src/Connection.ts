/**
 * A connection: framed, decoded, heartbeated messages over an
 * `@effect/platform` `Socket`. Its `run` is a scoped resource in which a
 * reader, a writer and a heartbeat fiber run joined fail-fast in a
 * `FiberSet`: the first failure interrupts the others, the socket is closed
 * (destroyed outright unless the close was a deliberate, flushed one) and
 * `run` fails with the typed reason.
 *
 * The hot path is synchronous: each TCP chunk is framed and decoded inside
 * the socket's data callback, decoded messages are handed to the handler in
 * batches (one fiber per burst, none while idle), and everything queued for
 * the peer goes out as one socket write per writer turn.
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import { FrameError } from "@tether/protocol/Frame"
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
  /** `offer` for a payload encoded once for many connections (broadcast). */
  readonly offerPayload: (payload: Uint8Array) => boolean
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
  Effect.clockWith((clock) => Effect.sync(() => unsafeMake(socket, options, () => clock.unsafeCurrentTimeMillis())))

/**
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = <M>(socket: Socket.Socket, options: Options<M>, now: () => number): Connection<M> => {
  const id = nextId++
  const { codec, framing } = options
  const policy = options.heartbeat
  const dialect = options.dialect
  if (policy && (policy.pinger !== undefined || policy.counts === "pong") && dialect === undefined) {
    throw new Error(`heartbeat policy "${policy.name}" needs a dialect`)
  }
  const capacity = options.outbound?.capacity ?? defaultOutboundCapacity
  const overflow = options.outbound?.overflow ?? "disconnect"
  const maxInbound = options.maxInbound ?? defaultMaxInbound
  const maxInboundBytes = options.maxInboundBytes ?? 8 * 1024 * 1024
  const maxWriteBytes = options.maxWriteBytes ?? 1024 * 1024
  const countsAny = policy?.counts !== "pong"
  const answers = policy?.answers === true && dialect !== undefined
  const stats: Stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }

  // --- state shared by the data callback and the fibers (one JS thread) ---
  let failure: ConnectionError | undefined
  let fiberSet: FiberSet.FiberSet<unknown, unknown> | undefined
  let closeRequested = false
  let closing: Kicked | undefined
  let open = false
  let lastHeard = 0
  let lastPong = 0
  let deadlineAt: number | undefined
  // inbound: decoded messages not yet handed to the handler
  let inbound: Array<M> = []
  let inboundBytes = 0
  let handling = false
  let paused = false
  let idleWaiters: Array<() => void> = []
  // outbound: encoded payloads not yet written
  let outbound: Array<Uint8Array> = []
  let wakeWriter: (() => void) | undefined
  let writing = false
  let roomWaiters: Array<() => void> = []
  let flushWaiters: Array<() => void> = []

  // the transport path: how `run` is woken when the connection ends
  let ended: ((cause: Cause.Cause<unknown>) => void) | undefined
  let endCause: Cause.Cause<unknown> | undefined

  const fail = (error: ConnectionError): void => {
    if (failure !== undefined) return
    failure = error
    if (fiberSet !== undefined) Deferred.unsafeDone(fiberSet.deferred, Exit.fail(error))
    endWith(Cause.fail(error))
    releaseWaiters()
  }

  const endWith = (cause: Cause.Cause<unknown>): void => {
    if (endCause !== undefined) return
    endCause = cause
    if (ended !== undefined) {
      const end = ended
      ended = undefined
      end(cause)
    }
  }

  const releaseWaiters = () => {
    const waiters = roomWaiters.concat(flushWaiters, idleWaiters)
    roomWaiters = []
    flushWaiters = []
    idleWaiters = []
    for (const w of waiters) w()
  }

  const transport = Transport.fromSocket(socket)
  const directWrite = transport !== undefined
    ? (bytes: Uint8Array, done: (error?: Error | null) => void) => transport.write(bytes, done)
    : options.directWrite
  let flushScheduled = false

  /** Makes the writer look at the queue: wakes the writer fiber, or schedules a direct flush. */
  const kickWriter = () => {
    if (directWrite !== undefined) {
      if (!flushScheduled && !writing) {
        flushScheduled = true
        queueMicrotask(flushDirect)
      }
    } else if (wakeWriter !== undefined) {
      const wake = wakeWriter
      wakeWriter = undefined
      wake()
    }
  }

  const enqueue = (payload: Uint8Array): boolean => {
    if (failure !== undefined || closing !== undefined) return false
    if (outbound.length >= capacity) {
      fail(new SlowConsumer({ queued: outbound.length, capacity }))
      return false
    }
    outbound.push(payload)
    kickWriter()
    return true
  }

  /** Takes the next batch off the queue (up to maxWriteBytes) and frames it as one buffer. */
  const takeBatch = (): Uint8Array | FrameError => {
    let batch: Array<Uint8Array>
    let size = 0
    let count = 0
    while (count < outbound.length && (count === 0 || size + outbound[count]!.length <= maxWriteBytes)) {
      size += outbound[count]!.length
      count++
    }
    if (count === outbound.length) {
      batch = outbound
      outbound = []
    } else {
      batch = outbound.slice(0, count)
      outbound = outbound.slice(count)
    }
    if (roomWaiters.length > 0) {
      const waiters = roomWaiters
      roomWaiters = []
      for (const w of waiters) w()
    }
    const bytes = framing.encodeAll(batch)
    if (bytes instanceof FrameError) return bytes
    stats.framesOut += batch.length
    stats.bytesOut += bytes.length
    Metrics.framesOut.unsafeUpdate(batch.length, [])
    Metrics.bytesOut.unsafeUpdate(bytes.length, [])
    return bytes
  }

  /** The queue is empty: release flush waiters; a requested close happens now. */
  const writerIdle = (): Kicked | undefined => {
    writing = false
    const waiters = flushWaiters
    flushWaiters = []
    for (const w of waiters) w()
    return closing
  }

  const flushDirect = (): void => {
    flushScheduled = false
    // A transport is written only once the connection runs (as a socket's writer waits for run).
    if (failure !== undefined || writing || (transport !== undefined && !open)) return
    if (outbound.length === 0) {
      const closed = writerIdle()
      if (closed !== undefined) fail(closed)
      return
    }
    const bytes = takeBatch()
    if (bytes instanceof FrameError) return fail(bytes)
    writing = true
    directWrite!(bytes, (error) => {
      writing = false
      if (error) return fail(new Socket.SocketGenericError({ reason: "Write", cause: error }))
      flushDirect()
    })
  }

  const encode = (message: M): Uint8Array | ProtocolError => {
    const payload = codec.encode(message)
    return payload instanceof Uint8Array
      ? payload
      : new ProtocolError({ reason: "EncodeFailed", detail: payload.message })
  }

  const offer = (message: M): boolean => {
    const payload = encode(message)
    return payload instanceof Uint8Array && enqueue(payload)
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

  const closedError = (): SlowConsumer | Kicked | ProtocolError =>
    failure !== undefined && failure._tag === "SlowConsumer"
      ? failure
      : closing ?? new Kicked({ reason: failure ? failure.message : "connection closed" })

  const send = (message: M): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> =>
    Effect.suspend(() => {
      const payload = encode(message)
      if (!(payload instanceof Uint8Array)) return Effect.fail(payload)
      const attempt = (): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> => {
        if (failure !== undefined || closing !== undefined) return Effect.fail(closedError())
        if (overflow === "backpressure" && outbound.length >= capacity) {
          return Effect.flatMap(waitFor((resume) => roomWaiters.push(resume)), attempt)
        }
        return enqueue(payload) ? Effect.void : Effect.fail(closedError())
      }
      return attempt()
    })

  const offerOrSend = (message: M): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> | undefined => {
    if (failure !== undefined || closing !== undefined || outbound.length >= capacity) return send(message)
    const payload = encode(message)
    if (!(payload instanceof Uint8Array)) return Effect.fail(payload)
    enqueue(payload)
    return undefined
  }

  // --- reader: runs synchronously in the socket's data callback ---
  let decoder: Frame.Decoder | undefined
  let startHandler: ((effect: Effect.Effect<void, unknown, any>) => Fiber.RuntimeFiber<void, unknown>) | undefined
  let handleLoop: Effect.Effect<void, unknown, any> | undefined
  let handleSync: ((batch: ReadonlyArray<M>) => Effect.Effect<void, unknown, any> | void) | undefined

  /** Hands the inbound batch to the handler: synchronously if it allows, else in the handler fiber. */
  const dispatch = (): void => {
    const batch = inbound
    inbound = []
    inboundBytes = 0
    let result: Effect.Effect<void, unknown, any> | void
    try {
      result = handleSync!(batch)
    } catch (defect) {
      result = Effect.die(defect)
    }
    if (result !== undefined) {
      handling = true
      startHandler!(Effect.flatMap(result, () => handleLoop!))
    }
  }

  const onData = (chunk: Uint8Array): void => {
    if (failure !== undefined) return
    stats.bytesIn += chunk.length
    const frames = decoder!.push(chunk)
    if (frames instanceof FrameError) return fail(frames)
    if (frames.length === 0) return
    stats.framesIn += frames.length
    Metrics.framesIn.unsafeUpdate(frames.length, [])
    Metrics.bytesIn.unsafeUpdate(chunk.length, [])
    const at = now()
    if (countsAny) lastHeard = at
    for (let i = 0; i < frames.length; i++) {
      inboundBytes += frames[i]!.length
      const message = codec.decode(frames[i]!)
      if (message instanceof Error) return fail(message as Codec.DecodeError)
      if (dialect !== undefined) {
        if (dialect.isPong(message)) {
          lastPong = at
          if (!countsAny) lastHeard = at
        }
        if (answers) {
          const reply = dialect.replyTo(message)
          if (reply !== undefined && !offer(reply)) return
        }
        if (dialect.isControl(message)) continue
      }
      inbound.push(message)
    }
    if (inbound.length > maxInbound || inboundBytes > maxInboundBytes) {
      return fail(
        new ProtocolError({
          reason: "InboundOverflow",
          detail: `${inbound.length} messages (${inboundBytes} bytes) waiting to be handled (limits ${maxInbound}, ${maxInboundBytes} bytes)`
        })
      )
    }
    if (inbound.length === 0) inboundBytes = 0
    if (!handling && !paused && inbound.length > 0) dispatch()
  }

  const handlerIdle = () => {
    handling = false
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  const makeHandleLoop = <E, R>(handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void) => {
    const loop: Effect.Effect<void, E, R> = Effect.suspend(() => {
      if (paused || inbound.length === 0 || failure !== undefined) {
        handlerIdle()
        return Effect.void
      }
      const batch = inbound
      inbound = []
      inboundBytes = 0
      const result = handler(batch)
      return result === undefined ? loop : Effect.flatMap(result, () => loop)
    })
    return Effect.onInterrupt(loop, () => Effect.sync(handlerIdle))
  }

  const whenHandlerIdle = Effect.suspend(() =>
    handling && failure === undefined ? waitFor((resume) => idleWaiters.push(resume)) : Effect.void
  )

  // --- writer: one socket write per turn, of everything queued ---
  const writerLoop = (write: (chunk: Uint8Array | Socket.CloseEvent) => Effect.Effect<void, Socket.SocketError>) => {
    const turn: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
      if (outbound.length === 0) {
        const closed = writerIdle()
        if (closed !== undefined) return Effect.fail(closed)
        return Effect.flatMap(waitFor((resume) => (wakeWriter = resume)), () => turn)
      }
      writing = true
      const bytes = takeBatch()
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
  const makeBeat = (): { readonly first: number; readonly run: (at: number) => number | undefined } | undefined => {
    const timeoutMs = policy?.timeoutMs
    const pinger = policy?.pinger?.()
    if (timeoutMs === undefined && pinger === undefined && deadlineAt === undefined) return undefined
    let seq = 0
    let lastPing: number | undefined
    let nextPingAt = pinger !== undefined ? now() + pinger.first() : Infinity
    const nextDue = () => {
      let due = nextPingAt
      if (timeoutMs !== undefined) due = Math.min(due, lastHeard + timeoutMs)
      if (deadlineAt !== undefined) due = Math.min(due, deadlineAt)
      return due === Infinity ? undefined : due
    }
    const run = (at: number): number | undefined => {
      if (failure !== undefined) return undefined
      if (timeoutMs !== undefined && at - lastHeard >= timeoutMs) {
        Metrics.heartbeatTimeouts.unsafeUpdate(1, [])
        fail(new HeartbeatTimeout({ silentForMs: at - lastHeard, timeoutMs }))
        return undefined
      }
      if (deadlineAt !== undefined && at >= deadlineAt) {
        fail(new DeadlineExceeded({ what: options.deadline!.what, afterMs: Duration.toMillis(options.deadline!.after) }))
        return undefined
      }
      if (pinger !== undefined && at >= nextPingAt) {
        const missed = lastPing !== undefined && lastPong < lastPing
        // A full queue fails the connection inside offer; a closing one skips
        // the ping but keeps watching liveness while it flushes.
        offer(dialect!.ping(seq))
        seq = (seq + 1) >>> 0
        lastPing = at
        nextPingAt = at + pinger.next(missed, at)
      }
      return nextDue()
    }
    return { first: nextDue() ?? Infinity, run }
  }

  /** The per-connection heartbeat fiber: sleeps until the beat is due, runs it. */
  const heartbeatFiber = (beat: NonNullable<ReturnType<typeof makeBeat>>): Effect.Effect<void> => {
    const tick: Effect.Effect<void> = Effect.suspend(() => {
      const at = now()
      const due = beat.run(at)
      if (due === undefined) return failure === undefined ? Effect.never : Effect.void
      return Effect.flatMap(Effect.sleep(Math.max(0, due - at)), () => tick)
    })
    return tick
  }

  /**
   * Starts the connection over a {@link Transport.Transport}: it is driven
   * by the transport's callbacks and the shared heartbeat scheduler, so an
   * idle connection has no fiber at all. A handler fiber exists only while
   * an Effect-returning handler runs. `onExit` is called once, after the
   * transport is closed and every fiber of the connection has ended.
   */
  const startTransport = <E, R>(
    transport: Transport.Transport,
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ): (() => void) => {
    const fork = Runtime.runFork(runtime)
    let handlerFiber: Fiber.RuntimeFiber<void, unknown> | undefined
    let heartbeat: Fiber.RuntimeFiber<void, unknown> | undefined
    let cancelBeat: (() => void) | undefined
    const start = now()
    lastHeard = start
    lastPong = start
    if (options.deadline !== undefined) deadlineAt = start + Duration.toMillis(options.deadline.after)
    decoder = framing.decoder()
    handleLoop = makeHandleLoop(handler)
    handleSync = handler
    startHandler = (effect) => {
      const fiber = fork(effect)
      handlerFiber = fiber
      fiber.addObserver((exit) => {
        if (handlerFiber === fiber) handlerFiber = undefined
        if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
          failure ??= Option.getOrElse(
            Cause.failureOption(exit.cause),
            () => new Kicked({ reason: "handler died" })
          ) as ConnectionError
          endWith(exit.cause)
        }
      })
      return fiber
    }
    Metrics.connectionsActive.unsafeModify(1, [])

    const finish = (cause: Cause.Cause<unknown>) => {
      failure ??= new Kicked({ reason: "interrupted" })
      releaseWaiters()
      cancelBeat?.()
      const deliberate = closing !== undefined && failure === closing && outbound.length === 0
      if (deliberate) transport.end()
      else transport.destroy()
      Metrics.connectionsActive.unsafeModify(-1, [])
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
    if (endCause !== undefined) {
      // Failed (or closed and flushed) before it started.
      finish(endCause)
    } else {
      ended = finish
      open = true
      transport.start({
        onData,
        onEnd: () => {
          if (failure !== undefined) return
          const end = () => fail(decoder!.end() ?? new PeerClosed())
          if (handling) idleWaiters.push(end)
          else end()
        },
        onError: fail
      })
      options.onOpen?.()
      if (outbound.length > 0 || closing !== undefined) kickWriter()
      const beat = makeBeat()
      if (beat !== undefined && failure === undefined) {
        if (options.heartbeatScheduler !== undefined) cancelBeat = options.heartbeatScheduler.add(beat, beat.first)
        else heartbeat = fork(heartbeatFiber(beat))
      }
    }
    return () => endWith(Cause.interrupt(FiberId.none))
  }

  const unsafeStart = <E, R>(
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ): (() => void) => {
    if (transport !== undefined) return startTransport(transport, runtime, handler, onExit)
    const fiber = Runtime.runFork(runtime)(run(handler))
    fiber.addObserver(onExit)
    return () => fiber.unsafeInterruptAsFork(FiberId.none)
  }

  const runTransport = <E, R>(
    transport: Transport.Transport,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ): Effect.Effect<never, ConnectionError | E, R> =>
    Effect.flatMap(Effect.runtime<R>(), (runtime) =>
      Effect.async<never, ConnectionError | E>((resume) => {
        let done: Exit.Exit<never, ConnectionError | E> | undefined
        let interrupted: (() => void) | undefined
        const stop = startTransport(transport, runtime, handler, (exit) => {
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

  const run = <E = never, R = never>(
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void
  ): Effect.Effect<never, ConnectionError | E, R> =>
    transport !== undefined ? runTransport(transport, handler) : Effect.scoped(
      Effect.gen(function*() {
        const write = yield* socket.writer
        const set = yield* FiberSet.make<unknown, unknown>()
        fiberSet = set
        const start = now()
        lastHeard = start
        lastPong = start
        if (options.deadline !== undefined) deadlineAt = start + Duration.toMillis(options.deadline.after)
        decoder = framing.decoder()
        handleLoop = makeHandleLoop(handler)
        handleSync = handler
        startHandler = (yield* FiberSet.runtime(set)<R>()) as any
        Metrics.connectionsActive.unsafeModify(1, [])
        yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.connectionsActive.unsafeModify(-1, [])))
        // Failed (or closed) before running: end at once, but still through
        // the reader, so the socket is opened and closed the normal way.
        if (failure !== undefined) Deferred.unsafeDone(set.deferred, Exit.fail(failure))

        const reader = yield* FiberSet.run(
          set,
          socket.run(onData, {
            onOpen: Effect.sync(() => {
              open = true
              options.onOpen?.()
            })
          }).pipe(
            Effect.zipRight(whenHandlerIdle),
            Effect.zipRight(Effect.suspend(() => Effect.fail(decoder!.end() ?? new PeerClosed())))
          )
        )
        if (directWrite === undefined) yield* FiberSet.run(set, writerLoop(write))
        else if (outbound.length > 0 || closing !== undefined) kickWriter()
        const beat = makeBeat()
        if (beat !== undefined) {
          if (options.heartbeatScheduler !== undefined) {
            const cancel = options.heartbeatScheduler.add(beat, beat.first)
            yield* Effect.addFinalizer(() => Effect.sync(cancel))
          } else {
            yield* FiberSet.run(set, heartbeatFiber(beat))
          }
        }

        // Runs before the FiberSet closes: a connection that did not end by a
        // deliberate, flushed close is destroyed outright, so a peer that does
        // not read cannot keep it (and its buffers) alive.
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            const deliberate = closing !== undefined && failure === closing && outbound.length === 0
            if (deliberate || !open || reader.unsafePoll() !== null) return Effect.void
            return Effect.ignore(write(new Socket.CloseEvent(1000)))
          })
        )
        yield* FiberSet.join(set)
        return yield* Effect.die("unreachable: a connection's fibers never all succeed")
      }).pipe(
        Effect.tapErrorCause((cause) =>
          Effect.sync(() => {
            failure ??= Option.getOrElse(
              Cause.failureOption(cause),
              () => new Kicked({ reason: "interrupted" })
            ) as ConnectionError
            releaseWaiters()
          })
        )
      )
    ) as Effect.Effect<never, ConnectionError | E, R>

  return {
    id,
    send,
    offer,
    offerOrSend,
    offerPayload: enqueue,
    close: (reason) => {
      if (closeRequested || failure !== undefined) return
      closeRequested = true
      paused = true
      // Let the handler in flight finish (and queue its replies) first.
      const markClosing = () => {
        if (failure !== undefined) return
        closing = new Kicked({ reason })
        kickWriter()
      }
      if (handling) idleWaiters.push(markClosing)
      else markClosing()
    },
    abort: fail,
    clearDeadline: () => {
      deadlineAt = undefined
    },
    pauseInput: Effect.suspend(() => {
      paused = true
      return whenHandlerIdle
    }),
    flushed: Effect.suspend(() =>
      (outbound.length > 0 || writing) && failure === undefined
        ? waitFor((resume) => flushWaiters.push(resume))
        : Effect.void
    ),
    run,
    unsafeStart,
    stats,
    queued: () => outbound.length,
    isOpen: () => failure === undefined && !closeRequested
  }
}
