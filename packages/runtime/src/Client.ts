/**
 * A client: dials (a fresh `Socket` per attempt), logs in, answers the
 * server's heartbeats, notices a silent server, and reconnects on a
 * `Schedule` (exponential from 1 s, factor 2, jittered, capped at 32 s, 10
 * attempts by default). Calls are correlated by id and never hang: each ends
 * with its answer, `RequestTimeout` or `ConnectionLost`.
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Connection from "./Connection.js"
import * as ConnectionError from "./ConnectionError.js"
import * as Heartbeat from "./Heartbeat.js"
import * as Metrics from "./Metrics.js"

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
 * The client's connection state, for UIs.
 *
 * @since 0.1.0
 * @category models
 */
export type State =
  | { readonly _tag: "Connecting"; readonly attempt: number }
  | { readonly _tag: "Connected" }
  | {
    readonly _tag: "Reconnecting"
    readonly attempt: number
    readonly maxAttempts: number | undefined
    readonly delayMs: number
    readonly reason: string
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
  readonly message: M
  /** The login's answer if `message` is one. */
  readonly result: (message: M) => { readonly status: number; readonly reason?: string | undefined } | undefined
  /** Time to wait for the answer (default 10 s). */
  readonly timeout?: Duration.DurationInput
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
  /** A fresh, not yet opened socket for each attempt (e.g. `NodeSocket.makeNet` with an open timeout). */
  readonly connect: Effect.Effect<Socket.Socket, Socket.SocketError>
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
  readonly states: Stream.Stream<State>
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

const isLoginRefused = (u: unknown): u is LoginRefused => u instanceof LoginRefused

/**
 * Starts the client in the background of the current scope; closing the
 * scope closes it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <M>(options: Options<M>): Effect.Effect<Client<M>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    // The current state is kept synchronously (so `state` is exact the moment
    // a login completes); the SubscriptionRef feeds `states` subscribers.
    let currentState: State = { _tag: "Connecting", attempt: 1 }
    const stateRef = yield* SubscriptionRef.make<State>(currentState)
    const setState = (state: State) =>
      Effect.suspend(() => {
        currentState = state
        return SubscriptionRef.set(stateRef, state)
      })
    const pending = new Map<number, Deferred.Deferred<M, ConnectionLost>>()
    let current: Connection.Connection<M> | undefined
    let connected = yield* Deferred.make<void, ConnectionLost | LoginRefused>()
    let closed = false
    let nextId = 1
    const reconnect = options.reconnect === false ? undefined : options.reconnect ?? {}
    const schedule = reconnect ? reconnectSchedule(reconnect) : undefined
    const maxAttempts = reconnect ? (reconnect.schedule ? undefined : reconnect.attempts ?? 10) : undefined
    const resetAfterMs = Duration.toMillis(reconnect?.resetAfter ?? "30 seconds")
    const heartbeat = options.heartbeat ?? Heartbeat.answer({ timeout: "17 seconds" })

    const failPending = (reason: string) => {
      const error = new ConnectionLost({ reason })
      for (const deferred of pending.values()) Deferred.unsafeDone(deferred, Exit.fail(error))
      pending.clear()
    }

    /** One connection, from dial to loss. Succeeds never; fails with why it ended. */
    const connectOnce = (onLive: () => void) =>
      Effect.gen(function*() {
        const socket = yield* options.connect
        let loggedIn = options.login === undefined
        const connection = yield* Connection.make(socket, {
          framing: options.framing,
          codec: options.codec,
          heartbeat,
          ...(options.dialect ? { dialect: options.dialect } : {}),
          ...(options.outbound ? { outbound: options.outbound } : {}),
          ...(options.login
            ? { deadline: { after: options.login.timeout ?? "10 seconds", what: "login answer" } }
            : {}),
          onOpen: () => {
            if (loggedIn) onLive()
          }
        })
        current = connection
        if (options.login) {
          yield* connection.send(options.login.message).pipe(
            Effect.mapError((error) => new LoginRefused({ status: -1, reason: `cannot send the login: ${error.message}` }))
          )
        }
        const handleOne = (message: M): Effect.Effect<void, LoginRefused> => {
          if (!loggedIn && options.login) {
            const result = options.login.result(message)
            if (result === undefined) {
              return Effect.fail(new LoginRefused({ status: -1, reason: "the server answered the login with something else" }))
            }
            if (result.status !== 0) {
              return Effect.fail(new LoginRefused({ status: result.status, reason: result.reason ?? "refused" }))
            }
            loggedIn = true
            connection.clearDeadline()
            onLive()
            return Effect.void
          }
          const id = options.correlate?.(message)
          if (id !== undefined) {
            const deferred = pending.get(id)
            if (deferred !== undefined) {
              pending.delete(id)
              Deferred.unsafeDone(deferred, Exit.succeed(message))
              return Effect.void
            }
          }
          return options.onMessage ? options.onMessage(message) : Effect.void
        }
        return yield* connection.run((batch) => Effect.forEach(batch, handleOne, { discard: true }))
      })

    const loop = Effect.gen(function*() {
      let attempt = 1
      let scheduleState = schedule?.initial
      for (;;) {
        let liveSince: number | undefined
        const onLive = () => {
          liveSince = now()
          attempt = 1
          Deferred.unsafeDone(connected, Exit.void)
          Effect.runFork(setState({ _tag: "Connected" }))
          currentState = { _tag: "Connected" }
        }
        const exit = yield* Effect.exit(connectOnce(onLive))
        current = undefined
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        const reason = error === undefined
          ? "connection closed"
          : (error as { _tag?: string })._tag === "PeerClosed"
          ? "the server closed the connection"
          : ConnectionError.describe(error)
        failPending(reason)
        if (closed) break
        if (liveSince !== undefined) {
          yield* Effect.logInfo(`disconnected: ${reason}`)
          if (now() - liveSince >= resetAfterMs) scheduleState = schedule?.initial
          connected = yield* Deferred.make<void, ConnectionLost | LoginRefused>()
        }
        if (isLoginRefused(error)) {
          yield* setState({ _tag: "GaveUp", reason: error.message })
          yield* Deferred.fail(connected, error)
          return
        }
        if (schedule === undefined) {
          yield* setState({ _tag: "GaveUp", reason })
          yield* Deferred.fail(connected, new ConnectionLost({ reason }))
          return
        }
        const at = now()
        const [nextState, , decision] = yield* schedule.step(at, error, scheduleState)
        if (ScheduleDecision.isDone(decision)) {
          const why = `${reason} (after ${attempt} attempts)`
          yield* setState({ _tag: "GaveUp", reason: why })
          yield* Deferred.fail(connected, new ConnectionLost({ reason: why }))
          return
        }
        scheduleState = nextState
        const delayMs = Math.max(0, Math.round(Intervals.start(decision.intervals) - at))
        Metrics.reconnects.unsafeUpdate(1, [])
        yield* setState({ _tag: "Reconnecting", attempt, maxAttempts, delayMs, reason })
        yield* Effect.sleep(delayMs)
        attempt++
        yield* setState({ _tag: "Connecting", attempt })
      }
    })

    yield* Effect.forkScoped(loop)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        current?.close("client closed")
        failPending("client closed")
      })
    )

    const send = (message: M): Effect.Effect<void, ConnectionLost> =>
      Effect.suspend(() => {
        const connection = current
        if (connection === undefined || !connection.isOpen()) {
          return Effect.fail(new ConnectionLost({ reason: "not connected" }))
        }
        return Effect.mapError(connection.send(message), (error) => new ConnectionLost({ reason: error.message }))
      })

    const call = (
      build: (id: number) => M,
      callOptions?: { readonly timeout?: Duration.DurationInput }
    ): Effect.Effect<M, RequestTimeout | ConnectionLost> =>
      Effect.flatMap(Deferred.make<M, ConnectionLost>(), (deferred) => {
        const id = nextId
        nextId = nextId >= 0xffff_ffff ? 1 : nextId + 1
        pending.set(id, deferred)
        const timeout = Duration.decode(callOptions?.timeout ?? defaultRequestTimeout)
        return send(build(id)).pipe(
          Effect.zipRight(Deferred.await(deferred)),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => {
              Metrics.requestTimeouts.unsafeUpdate(1, [])
              return new RequestTimeout({ id, timeoutMs: Duration.toMillis(timeout) })
            }
          }),
          Effect.ensuring(Effect.sync(() => pending.delete(id)))
        )
      })

    return {
      send,
      call,
      state: Effect.sync(() => currentState),
      states: stateRef.changes,
      awaitConnected: Effect.suspend(() => Deferred.await(connected)),
      close: Effect.sync(() => {
        closed = true
        current?.close("client closed")
      }).pipe(Effect.zipRight(setState({ _tag: "Closed" })))
    }
  })
