/**
 * A connection: framed, decoded, heartbeated messages over a socket. `run`
 * ends with the first failure, typed: reading, writing and liveness are
 * joined fail-fast, the others stop, the socket is closed (destroyed outright
 * unless the close was a deliberate, flushed one).
 *
 * One engine (`internal/engine.ts`: inbound, outbound, liveness and a small
 * lifecycle core) runs every connection; two drivers run the engine:
 * - the **fiber driver** (`internal/fiberDriver.ts`), the card's shape: a
 *   reader, a writer and a heartbeat fiber in a `FiberSet`, over any
 *   `@effect/platform` `Socket` (clients, tests, any platform);
 * - the **callback driver** (`internal/callbackDriver.ts`), over a socket that
 *   carries a {@link Transport.Transport} (`@tether/node`'s server sockets):
 *   the transport's callbacks and a shared heartbeat scheduler, no fiber per
 *   idle connection. The default for such sockets; `driver: "fiber"` picks
 *   the card's shape there too.
 *
 * @example
 * ```ts
 * const connection = yield* Connection.make(socket, {
 *   framing: Frame.lengthPrefixed(),
 *   codec: Codec.json(Message.Message),
 *   dialect: TetherProtocol.dialect,
 *   heartbeat: Heartbeat.ping({ interval: "5 seconds", timeout: "17 seconds" })
 * })
 * // Echo every Request; a silent peer ends `run` with HeartbeatTimeout.
 * yield* connection.run((batch) => {
 *   for (const m of batch) if (m._tag === "Request") connection.unsafeSend({ _tag: "Response", id: m.id, body: m.body })
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import type * as Wire from "@tether/protocol/Wire"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Runtime from "effect/Runtime"
import type { ConnectionError, Kicked, ProtocolError, SlowConsumer } from "./ConnectionError.js"
import type * as Heartbeat from "./Heartbeat.js"
import type * as HeartbeatScheduler from "./HeartbeatScheduler.js"
import * as Engine from "./internal/engine.js"

/**
 * What to do when a peer's outbound queue is full.
 * - `disconnect`: close it with `SlowConsumer` (the default: one slow reader
 *   must not hold up anyone else).
 * - `backpressure`: `send` waits for room, and the connection's next batch
 *   of input waits until the queue is under its bounds again (so an echo
 *   peer that does not read stops being read, within the inbound bounds).
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
  /** The same bound in payload bytes (default 16 MiB). */
  readonly maxBytes?: number
  readonly overflow?: OverflowPolicy
}

/**
 * Which driver runs the connection (see the module's description).
 *
 * @since 0.2.0
 * @category models
 */
export type Driver = "callback" | "fiber"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<M> {
  readonly framing: Frame.Framing
  readonly codec: Codec.Codec<M>
  /** The same framing and codec bound once, shared by many connections (a server's); default: bound here. */
  readonly wire?: Wire.Wire<M> | undefined
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
  /** The same bound in received bytes (default 8 MiB). */
  readonly maxInboundBytes?: number
  /**
   * A deadline from the start of `run`, e.g. for login; lift it with
   * `clearDeadline`. With `quiet`, no pings go out until it is lifted (the
   * peer's first answer is the login's), and the heartbeat starts then.
   */
  readonly deadline?: {
    readonly after: Duration.DurationInput
    readonly what: string
    readonly quiet?: boolean
    /** Bytes the peer may send until the deadline is lifted (e.g. a login's size); beyond: `InboundOverflow`. */
    readonly maxBytes?: number | undefined
  }
  /** Called once the socket is open (for a client: connected). */
  readonly onOpen?: () => void
  /** Run liveness on a scheduler shared by many connections (the server's), under the callback driver. */
  readonly heartbeatScheduler?: HeartbeatScheduler.HeartbeatScheduler | undefined
  /** Largest number of bytes gathered into one socket write (default 1 MiB). */
  readonly maxWriteBytes?: number
  /** Default: `callback` over a socket carrying a Transport, else `fiber`. */
  readonly driver?: Driver
}

/**
 * Default outbound capacity, in messages.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultOutboundCapacity: number = Engine.defaultOutboundCapacity

/**
 * Default outbound bound, in bytes.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultOutboundBytes: number = Engine.defaultOutboundBytes

/**
 * Default inbound limit, in messages.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultMaxInbound: number = Engine.defaultMaxInbound

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
  readonly stats: Readonly<Stats>
  /**
   * Queue a message (or a payload encoded once for many, `Wire.share`) for
   * the peer. Under `disconnect` a full queue closes the connection with
   * `SlowConsumer` (and this fails with it); under `backpressure` it waits
   * for room. Fails with `Kicked` once the connection is closing or closed.
   */
  readonly send: (message: M | Wire.Encoded) => Effect.Effect<void, SlowConsumer | Kicked | ProtocolError>
  /**
   * `send` without suspending, for synchronous handlers and broadcasts:
   * true when queued. Under `disconnect` a full queue closes the connection
   * (false); under `backpressure` the message is queued and the connection's
   * next batch of input waits for room. False once closing or closed. An
   * unencodable message is the program's bug: false, nothing queued.
   */
  readonly unsafeSend: (message: M | Wire.Encoded) => boolean
  /**
   * `unsafeSend` of a bounded burst the program owes the peer, all at once
   * (a resume's replay of missed lines): the queue's bounds are raised by
   * the burst's size until it has drained back under them, so the burst
   * alone never closes the connection as a slow consumer. The caller bounds
   * the burst (the replay: by the history's limits). False when not queued.
   */
  readonly unsafeSendBurst: (messages: ReadonlyArray<M | Wire.Encoded>) => boolean
  /**
   * Close deliberately: stop handing input to the handler, write out what is
   * queued, then end `run` with `Kicked { reason }` and close the socket.
   */
  readonly close: (reason: string) => void
  /** Close at once with `error`: nothing more is written, the socket is destroyed. */
  readonly abort: (error: ConnectionError) => void
  /** Lift the deadline set with `options.deadline` (after a `quiet` one, the heartbeat starts). */
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
   * it. Under the callback driver an idle connection costs no fiber at all.
   */
  readonly unsafeStart: <E = never, R = never>(
    runtime: Runtime.Runtime<R>,
    handler: (batch: ReadonlyArray<M>) => Effect.Effect<void, E, R> | void,
    onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
  ) => () => void
  /** Messages queued for the peer and not yet written. */
  readonly queued: () => number
  /** Neither ended nor closing. */
  readonly isOpen: () => boolean
}

/**
 * Wraps a socket. Nothing happens until `run`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <M>(socket: Socket.Socket, options: Options<M>): Effect.Effect<Connection<M>> =>
  Effect.clockWith((clock) => Effect.sync(() => new Engine.Engine(socket, options, clock)))

/**
 * `make`, synchronously, reading time from `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = <M>(socket: Socket.Socket, options: Options<M>, now: () => number): Connection<M> =>
  new Engine.Engine(socket, options, { unsafeCurrentTimeMillis: now })
