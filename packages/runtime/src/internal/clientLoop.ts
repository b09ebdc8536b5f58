/**
 * The client's machinery: one connection from dial to loss (`connectOnce`),
 * the dial / login / reconnect loop over one or several servers, the state
 * and its events, and correlated calls. `Client.make` is this module's
 * `make`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Client from "../Client.js"
import * as Connection from "../Connection.js"
import * as ConnectionError from "../ConnectionError.js"
import * as Heartbeat from "../Heartbeat.js"
import * as Metrics from "../Metrics.js"

/** State changes a slow `events` reader may fall behind before the oldest are dropped. @internal */
const eventCapacity = 1024

const isLoginRefused = (u: unknown): u is Client.LoginRefused => u instanceof Client.LoginRefused

/** The login message of this attempt. @internal */
const loginMessage = <M>(login: Client.Login<M>): M =>
  typeof login.message === "function" ? (login.message as () => M)() : login.message

/** Why a connection ended, for people. @internal */
const describeEnd = (error: unknown): string =>
  error === undefined
    ? "connection closed"
    : (error as { _tag?: string })._tag === "PeerClosed"
    ? "the server closed the connection"
    : ConnectionError.describe(error as ConnectionError.ConnectionError)

/** @internal */
export const make = <M>(options: Client.Options<M>): Effect.Effect<Client.Client<M>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const servers: ReadonlyArray<Client.Connect> = Array.isArray(options.connect)
      ? options.connect as ReadonlyArray<Client.Connect>
      : [options.connect as Client.Connect]
    if (servers.length === 0) return yield* Effect.dieMessage("Client.make: `connect` lists no server")
    // The current state is kept synchronously (so `state` is exact the moment
    // a login completes); the SubscriptionRef feeds `states`, the PubSub `events`.
    let currentState: Client.State = { _tag: "Connecting", attempt: 1, server: 0 }
    const stateRef = yield* SubscriptionRef.make<Client.State>(currentState)
    const events = yield* PubSub.sliding<Client.State>({ capacity: eventCapacity, replay: Client.eventReplay })
    events.unsafeOffer(currentState)
    const setState = (state: Client.State) =>
      Effect.suspend(() => {
        currentState = state
        events.unsafeOffer(state)
        return SubscriptionRef.set(stateRef, state)
      })
    const pending = new Map<number, Deferred.Deferred<M, Client.ConnectionLost>>()
    let current: Connection.Connection<M> | undefined
    let connected = yield* Deferred.make<void, Client.ConnectionLost | Client.LoginRefused>()
    let closed = false
    let everConnected = false
    // A login was sent on an earlier connection whose answer never came back: the
    // server may hold that session still, so "already connected" is no final answer.
    let loginUnanswered = false
    let sentLogin = false
    let nextId = 1
    const reconnect = options.reconnect === false ? undefined : options.reconnect ?? {}
    const schedule = reconnect ? Client.reconnectSchedule(reconnect) : undefined
    const maxAttempts = reconnect ? (reconnect.schedule ? undefined : reconnect.attempts ?? 10) : undefined
    const resetAfterMs = Duration.toMillis(reconnect?.resetAfter ?? "30 seconds")
    const heartbeat = options.heartbeat ?? Heartbeat.answer({ timeout: "17 seconds" })

    const failPending = (reason: string) => {
      const error = new Client.ConnectionLost({ reason })
      for (const deferred of pending.values()) Deferred.unsafeDone(deferred, Exit.fail(error))
      pending.clear()
    }

    /** One connection to `servers[server]`, from dial to loss. Succeeds never; fails with why it ended. */
    const connectOnce = (server: number, onLive: () => void) =>
      Effect.gen(function*() {
        sentLogin = false
        // The onLogin hook runs in this set: closing it (the connection's end) interrupts it.
        const hooks = yield* FiberSet.make<void>()
        const runHook = yield* FiberSet.runtime(hooks)<never>()
        const live = () => {
          const reconnected = everConnected
          onLive()
          if (options.onLogin) runHook(options.onLogin({ server, reconnected }))
        }
        const socket = yield* servers[server]!
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
            if (loggedIn) live()
          }
        })
        current = connection
        if (options.login) {
          yield* connection.send(loginMessage(options.login)).pipe(
            Effect.mapError((error) =>
              new Client.LoginRefused({ status: -1, reason: `cannot send the login: ${error.message}` })
            )
          )
          sentLogin = true
        }
        const handleOne = (message: M): Effect.Effect<void, Client.LoginRefused> => {
          if (!loggedIn && options.login) {
            const result = options.login.result(message)
            if (result === undefined) {
              return Effect.fail(
                new Client.LoginRefused({ status: -1, reason: "the server answered the login with something else" })
              )
            }
            if (result.status !== 0) {
              return Effect.fail(new Client.LoginRefused({ status: result.status, reason: result.reason ?? "refused" }))
            }
            loggedIn = true
            connection.clearDeadline()
            live()
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
      }).pipe(Effect.scoped)

    const loop = Effect.gen(function*() {
      let attempt = 1
      let server = 0
      let scheduleState = schedule?.initial
      for (;;) {
        let liveSince: number | undefined
        const onLive = () => {
          const reconnected = everConnected
          liveSince = now()
          attempt = 1
          everConnected = true
          Deferred.unsafeDone(connected, Exit.void)
          const state: Client.State = { _tag: "Connected", server, reconnected }
          currentState = state
          Effect.runFork(setState(state))
        }
        const exit = yield* Effect.exit(connectOnce(server, onLive))
        current = undefined
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        const reason = describeEnd(error)
        failPending(reason)
        if (closed) break
        if (liveSince !== undefined) {
          yield* Effect.logInfo(`disconnected: ${reason}`)
          if (now() - liveSince >= resetAfterMs) scheduleState = schedule?.initial
          connected = yield* Deferred.make<void, Client.ConnectionLost | Client.LoginRefused>()
        }
        const mayHoldSession = everConnected || loginUnanswered
        if (sentLogin && liveSince === undefined && !isLoginRefused(error)) loginUnanswered = true
        if (isLoginRefused(error) && !(mayHoldSession && options.login?.retryOnReconnect?.includes(error.status))) {
          yield* setState({ _tag: "GaveUp", reason: error.message })
          yield* Deferred.fail(connected, error)
          return
        }
        if (schedule === undefined) {
          yield* setState({ _tag: "GaveUp", reason })
          yield* Deferred.fail(connected, new Client.ConnectionLost({ reason }))
          return
        }
        const at = now()
        const [nextState, , decision] = yield* schedule.step(at, error, scheduleState)
        if (ScheduleDecision.isDone(decision)) {
          const why = `${reason} (after ${attempt} attempts)`
          yield* setState({ _tag: "GaveUp", reason: why })
          yield* Deferred.fail(connected, new Client.ConnectionLost({ reason: why }))
          return
        }
        scheduleState = nextState
        // The server failed (to answer, or while connected): the next attempt goes to the next one.
        server = (server + 1) % servers.length
        const delayMs = Math.max(0, Math.round(Intervals.start(decision.intervals) - at))
        Metrics.reconnects.unsafeUpdate(1, [])
        yield* setState({ _tag: "Reconnecting", attempt, maxAttempts, delayMs, reason, server })
        yield* Effect.sleep(delayMs)
        attempt++
        yield* setState({ _tag: "Connecting", attempt, server })
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

    const send = (message: M): Effect.Effect<void, Client.ConnectionLost> =>
      Effect.suspend(() => {
        const connection = current
        if (connection === undefined || !connection.isOpen()) {
          return Effect.fail(new Client.ConnectionLost({ reason: "not connected" }))
        }
        return Effect.mapError(connection.send(message), (error) => new Client.ConnectionLost({ reason: error.message }))
      })

    const call = (
      build: (id: number) => M,
      callOptions?: { readonly timeout?: Duration.DurationInput }
    ): Effect.Effect<M, Client.RequestTimeout | Client.ConnectionLost> =>
      Effect.flatMap(Deferred.make<M, Client.ConnectionLost>(), (deferred) => {
        const id = nextId
        nextId = nextId >= 0xffff_ffff ? 1 : nextId + 1
        pending.set(id, deferred)
        const timeout = Duration.decode(callOptions?.timeout ?? Client.defaultRequestTimeout)
        return send(build(id)).pipe(
          Effect.zipRight(Deferred.await(deferred)),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => {
              Metrics.requestTimeouts.unsafeUpdate(1, [])
              return new Client.RequestTimeout({ id, timeoutMs: Duration.toMillis(timeout) })
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
      events: Stream.fromPubSub(events),
      awaitConnected: Effect.suspend(() => Deferred.await(connected)),
      close: Effect.sync(() => {
        closed = true
        current?.close("client closed")
      }).pipe(Effect.zipRight(setState({ _tag: "Closed" })))
    }
  })
