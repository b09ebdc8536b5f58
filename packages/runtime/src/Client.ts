/**
 * A client: dials (a fresh `Socket` per attempt), logs in, answers the
 * server's heartbeats, notices a silent server, and reconnects on a
 * `Schedule` (exponential from 1 s, factor 2, jittered, capped at 32 s, 10
 * attempts by default). Given several servers, it tries them in turn: each
 * failed attempt or lost connection moves it to the next one, with the same
 * backoff. Calls are correlated by id and never hang: each ends with its
 * answer, `RequestTimeout` or `ConnectionLost`.
 *
 * The public module is the interfaces and the constructor; the dial / login /
 * reconnect loop lives in `internal/clientLoop.ts`.
 *
 * @example
 * ```ts
 * const client = yield* Client.make({
 *   connect: [NodeTether.connect({ port: 7373 }), NodeTether.connect({ port: 7374 })],
 *   framing: Frame.lengthPrefixed(),
 *   codec: Codec.json(Message.Message),
 *   dialect: TetherProtocol.dialect,
 *   // Built again at each attempt, e.g. from what the app has seen so far.
 *   login: { ...TetherProtocol.clientLogin("alice", "secret"), message: () => loginMessage() },
 *   onLogin: ({ reconnected }) => reconnected ? resendQueued : Effect.void
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Connection from "./Connection.js"
import type * as Heartbeat from "./Heartbeat.js"
import * as ClientLoop from "./internal/clientLoop.js"

/**
 * The connection went away (or was never there) while a call was pending.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{ readonly reason: string }> {
  override get message(): string {
    return `connection lost: ${this.reason}`
  }
}

/**
 * No answer within the call's timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{
  readonly id: number
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `request ${this.id} got no answer within ${this.timeoutMs} ms`
  }
}

/**
 * The server refused the login (status 5: invalid credentials; 100: already connected).
 *
 * @since 0.1.0
 * @category errors
 */
export class LoginRefused extends Data.TaggedError("LoginRefused")<{
  readonly status: number
  readonly reason: string
}> {
  override get message(): string {
    return `login refused (status ${this.status}): ${this.reason}`
  }
}

/**
 * The server answered a request with a failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class RemoteFailure extends Data.TaggedError("RemoteFailure")<{
  readonly id: number
  readonly code: string
  readonly detail: string
}> {
  override get message(): string {
    return `request ${this.id} failed: ${this.code}: ${this.detail}`
  }
}

/**
 * The client's connection state, for UIs; each change is also an event of
 * `Client.events`. `server` is the index in `Options.connect` of the server
 * being dialled, connected to, or to be dialled next.
 *
 * @since 0.1.0
 * @category models
 */
export type State =
  | { readonly _tag: "Connecting"; readonly attempt: number; readonly server?: number }
  | {
    readonly _tag: "Connected"
    readonly server?: number
    /** Logged in again after having been connected before. */
    readonly reconnected?: boolean
  }
  | {
    readonly _tag: "Reconnecting"
    readonly attempt: number
    readonly maxAttempts: number | undefined
    readonly delayMs: number
    readonly reason: string
    readonly server?: number
  }
  | { readonly _tag: "GaveUp"; readonly reason: string }
  | { readonly _tag: "Closed" }

/**
 * How a protocol logs in from the client side.
 *
 * @since 0.1.0
 * @category models
 */
export interface Login<M> {
  /**
   * The login message, or a function that builds it at each attempt (e.g.
   * with the positions to resume, which change between reconnects).
   */
  readonly message: M | (() => M)
  /** The login's answer if `message` is one. */
  readonly result: (message: M) => { readonly status: number; readonly reason?: string | undefined } | undefined
  /** Time to wait for the answer (default 10 s). */
  readonly timeout?: Duration.DurationInput
  /**
   * Refusal statuses that, on a reconnect (after a first successful login, or
   * after a login whose connection was lost before its answer came back), are
   * retried on the reconnect schedule instead of ending the client: e.g.
   * "user already connected" while the server has not yet noticed that the
   * previous connection is gone. A first login refused always ends it.
   */
  readonly retryOnReconnect?: ReadonlyArray<number>
}

/**
 * Reconnect settings. The default schedule is exponential from `base`
 * (1 s) by `factor` (2), jittered, capped at `max` (32 s), `attempts` (10)
 * times; the attempt count starts over after `resetAfter` (30 s) of being
 * connected.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconnect {
  readonly base?: Duration.DurationInput
  readonly factor?: number
  readonly max?: Duration.DurationInput
  readonly attempts?: number
  readonly jitter?: boolean
  readonly resetAfter?: Duration.DurationInput
  /** A schedule of your own instead (its output is ignored; its delays are used). */
  readonly schedule?: Schedule.Schedule<unknown, unknown>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<M> {
  /**
   * A fresh, not yet opened socket for each attempt (e.g. `NodeTether.connect`
   * with an open timeout); or several, one per server, tried in turn: a failed
   * attempt or a lost connection moves to the next one (after the schedule's
   * delay, as with one server).
   */
  readonly connect: Connect | ReadonlyArray<Connect>
  readonly framing: Frame.Framing
  readonly codec: Codec.Codec<M>
  readonly dialect?: Heartbeat.Dialect<NoInfer<M>>
  /** Default: answer pings, and fail after 17 s of silence from the server. */
  readonly heartbeat?: Heartbeat.Policy
  readonly outbound?: Connection.OutboundOptions
  readonly login?: Login<NoInfer<M>>
  /** `false`: no reconnects; the client gives up at the first loss. */
  readonly reconnect?: Reconnect | false
  /** The correlation id of an answer (Response, Ack, ...), if `message` is one. */
  readonly correlate?: (message: M) => number | undefined
  /** Every other message from the server, in order. */
  readonly onMessage?: (message: M) => Effect.Effect<void>
  /**
   * Run after each successful login (or open, without a login), in a fiber
   * of that connection: interrupted if it is lost. E.g. resend what waits.
   */
  readonly onLogin?: (info: LoginInfo) => Effect.Effect<void>
}

/**
 * How to open one connection to one server.
 *
 * @since 0.2.0
 * @category models
 */
export type Connect = Effect.Effect<Socket.Socket, Socket.SocketError>

/**
 * What `Options.onLogin` is told about a fresh login.
 *
 * @since 0.2.0
 * @category models
 */
export interface LoginInfo {
  /** The index in `Options.connect` of the server. */
  readonly server: number
  /** Logged in again after having been connected before. */
  readonly reconnected: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Client<M> {
  /** Queue a message on the live connection; fails with `ConnectionLost` when there is none. */
  readonly send: (message: M) => Effect.Effect<void, ConnectionLost>
  /**
   * Send `build(id)` with a fresh correlation id and wait for the answer
   * carrying that id.
   */
  readonly call: (
    build: (id: number) => M,
    options?: { readonly timeout?: Duration.DurationInput }
  ) => Effect.Effect<M, RequestTimeout | ConnectionLost>
  readonly state: Effect.Effect<State>
  /** The latest state, then each change (a slow reader may skip intermediate ones). */
  readonly states: Stream.Stream<State>
  /**
   * Every state change from the moment the stream is run (a subscriber first
   * gets up to the last {@link eventReplay} changes, so one started right
   * after `make` misses nothing); a reader more than 1,024 changes behind
   * loses the oldest rather than holding up the client.
   */
  readonly events: Stream.Stream<State>
  /** Waits until connected (and logged in); fails if the client gives up or is closed first. */
  readonly awaitConnected: Effect.Effect<void, ConnectionLost | LoginRefused>
  /** Ends the client: the connection is closed after flushing what is queued, and no reconnect follows. */
  readonly close: Effect.Effect<void>
}

/**
 * The default request timeout.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultRequestTimeout: Duration.DurationInput = "10 seconds"

/**
 * How many past state changes a new `events` subscriber gets first.
 *
 * @since 0.2.0
 * @category defaults
 */
export const eventReplay = 16

/**
 * The reconnect schedule for the given settings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reconnectSchedule = (options: Reconnect = {}): Schedule.Schedule<unknown, unknown> => {
  if (options.schedule) return options.schedule
  const exponential = Schedule.exponential(options.base ?? "1 second", options.factor ?? 2)
  const jittered = options.jitter === false ? exponential : Schedule.jittered(exponential)
  return jittered.pipe(
    Schedule.either(Schedule.spaced(options.max ?? "32 seconds")),
    Schedule.intersect(Schedule.recurs(options.attempts ?? 10))
  )
}

/**
 * Starts the client in the background of the current scope; closing the
 * scope closes it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <M>(options: Options<M>): Effect.Effect<Client<M>, never, Scope.Scope> => ClientLoop.make(options)
