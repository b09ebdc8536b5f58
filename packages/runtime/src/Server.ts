/**
 * A Tether server on an `@effect/platform` `SocketServer`: one connection per
 * accepted socket (started with `Connection.unsafeStart`: over `@tether/node`'s
 * sockets no fiber per idle session), an optional login step through
 * the {@link Authenticator}, a connection limit, a {@link Registry.Registry}
 * of live sessions, and a graceful drain when the server's scope closes.
 *
 * @since 0.1.0
 */
import * as SocketServer from "@effect/platform/SocketServer"
import type * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import type * as Message from "@tether/protocol/Message"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { Authenticator } from "./Authenticator.js"
import type * as Credentials from "./Authenticator.js"
import * as Connection from "./Connection.js"
import * as ConnectionError from "./ConnectionError.js"
import type * as Heartbeat from "./Heartbeat.js"
import * as HeartbeatScheduler from "./HeartbeatScheduler.js"
import * as Metrics from "./Metrics.js"
import * as Registry from "./Registry.js"
import * as Transport from "./Transport.js"

/**
 * Checks a user's credentials for the login step (moved to its own module;
 * re-exported here).
 *
 * @since 0.1.0
 * @category services
 */
export { Authenticator } from "./Authenticator.js"

/**
 * How a protocol logs in: which message carries credentials and how the
 * answer looks. Status 0: session live; 5: invalid credentials, or the first
 * message was not a login (the connection is then closed); 100: user already
 * connected.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoginDialect<M> {
  readonly credentials: (message: M) => Credentials.Credentials | undefined
  readonly result: (status: Message.LoginStatus, reason?: string) => M
}

/**
 * The login step of Tether's own protocol.
 *
 * @since 0.1.0
 * @category dialects
 */
export const tetherLogin: LoginDialect<Message.Message> = {
  credentials: (message) =>
    message._tag === "Login" ? { user: message.user, password: message.password, token: message.token } : undefined,
  result: (status, reason) =>
    reason === undefined ? { _tag: "LoginResult", status } : { _tag: "LoginResult", status, reason }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<M, E, R> {
  readonly framing: Frame.Framing
  readonly codec: Codec.Codec<M>
  readonly heartbeat?: Heartbeat.Policy
  readonly dialect?: Heartbeat.Dialect<NoInfer<M>>
  readonly outbound?: Connection.OutboundOptions
  readonly maxInbound?: number
  readonly maxInboundBytes?: number
  /** The login step; without it every connection is a session at once. */
  readonly login?: LoginDialect<NoInfer<M>>
  /** Time from accept to a successful login (default 10 s). */
  readonly loginTimeout?: Duration.DurationInput
  /** Connections beyond this many get `refuse(reason)` (if given) and are closed. */
  readonly maxConnections?: number
  readonly refuse?: (reason: string) => NoInfer<M> | undefined
  /** The message sent to a session the server closes (kick, shutdown). */
  readonly goodbye?: (reason: string) => NoInfer<M> | undefined
  /** How long shutdown waits for handlers and queues (default 10 s) before interrupting. */
  readonly drainTimeout?: Duration.DurationInput
  /**
   * Handles each message of a live session, in order. Its failure ends that
   * session only. Returning nothing (having done the work synchronously, e.g.
   * with `offerOrSend`) is the fast path: no Effect, no fiber.
   */
  readonly handler: (session: Registry.Session<M>, message: M) => Effect.Effect<void, E, R> | void
  readonly onJoin?: (session: Registry.Session<M>) => Effect.Effect<void, never, R>
  readonly onLeave?: (session: Registry.Session<M>, reason: string) => Effect.Effect<void, never, R>
  /**
   * Run every connection's heartbeat (pings, timeouts, login deadline) on one
   * scheduler fiber for the whole server instead of a fiber per connection
   * (default true: a fiber and a timer less per connection).
   */
  readonly sharedHeartbeat?: boolean
  /** Describes the peer of an accepted socket (the Node layer supplies `host:port`). */
  readonly peerAddress?: Effect.Effect<string>
  /**
   * A direct write function for an accepted socket (`NodeTether.directWrite`):
   * the writer then needs no fiber and no Effect per write. Evaluated per accept.
   */
  readonly directWrite?: Effect.Effect<Connection.Options<M>["directWrite"]>
}

/**
 * Totals over the server's life.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  accepted: number
  refused: number
  closed: number
  framesIn: number
  framesOut: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Server<M> {
  readonly address: SocketServer.Address
  readonly registry: Registry.Registry<M>
  /** Connections accepted and running, logged in or not. */
  readonly connections: () => number
  readonly stats: Readonly<Stats>
}

/**
 * Default drain timeout: 10 s, as in the echo-server article.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultDrainTimeout: Duration.DurationInput = "10 seconds"

/**
 * Default login timeout.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultLoginTimeout: Duration.DurationInput = "10 seconds"

const noop = () => {}

const logExit = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return Effect.void
  if (Cause.isInterruptedOnly(exit.cause)) return Effect.logDebug("connection interrupted")
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) return Effect.logError("connection died", exit.cause)
  const tag = (error.value as { _tag?: string })._tag
  const reason = ConnectionError.describe(error.value)
  const quiet = tag === "PeerClosed" || tag === "Kicked"
  return quiet
    ? Effect.logInfo(`connection closed: ${reason}`)
    : Effect.logWarning(`connection closed: ${reason}`).pipe(
      Effect.annotateLogs({ error: tag ?? "unknown", detail: ConnectionError.detail(error.value) })
    )
}

/**
 * Starts serving on the `SocketServer` in context. The server stops when the
 * scope closes: it stops accepting, lets handlers in flight finish, sends
 * each session the goodbye message, flushes every queue for up to
 * `drainTimeout`, then interrupts what is left.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <M, E = never, R = never>(
  options: Options<M, E, R>
): Effect.Effect<Server<M>, never, SocketServer.SocketServer | Authenticator | Scope.Scope | R> =>
  Effect.gen(function*() {
    const socketServer = yield* SocketServer.SocketServer
    const authenticator = yield* Authenticator
    const registry = Registry.unsafeMake<M>({ codec: options.codec, goodbye: options.goodbye })
    const live = new Set<Registry.Session<M>>()
    const stats: Stats = { accepted: 0, refused: 0, closed: 0, framesIn: 0, framesOut: 0 }
    const heartbeatScheduler = options.sharedHeartbeat === false ? undefined : yield* HeartbeatScheduler.make
    const connectionOptions: Connection.Options<M> = {
      ...(heartbeatScheduler ? { heartbeatScheduler } : {}),
      framing: options.framing,
      codec: options.codec,
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.dialect ? { dialect: options.dialect } : {}),
      ...(options.outbound ? { outbound: options.outbound } : {}),
      ...(options.maxInbound ? { maxInbound: options.maxInbound } : {}),
      ...(options.maxInboundBytes ? { maxInboundBytes: options.maxInboundBytes } : {}),
      ...(options.login ? { deadline: { after: options.loginTimeout ?? defaultLoginTimeout, what: "login" } } : {})
    }
    const login = options.login

    // Sessions run without a fiber of their own (Connection.unsafeStart);
    // their handler fibers and exit handling run on this runtime.
    const runtime = yield* Effect.runtime<R>()
    const fork = Runtime.runFork(runtime)
    const running = new Map<number, () => void>()
    let settledWaiters: Array<() => void> = []
    const settled = (id: number) => {
      running.delete(id)
      if (running.size === 0 && settledWaiters.length > 0) {
        const waiters = settledWaiters
        settledWaiters = []
        for (const w of waiters) w()
      }
    }

    type Live = { id: number; user: string | undefined; remote: string; connection: Connection.Connection<M> }
    // The session logic is shared by all sessions (each session costs two
    // small closures, not a set of its own).
    const refuseLogin = (session: Live, status: 5 | 100, reason: string) => {
      if (login) session.connection.offer(login.result(status, reason))
      session.connection.close(reason)
    }
    const logIn = (session: Live, credentials: Credentials.Credentials) =>
      Effect.flatMap(authenticator.authenticate({ ...credentials, remote: session.remote }), (ok) => {
        const connection = session.connection
        if (!connection.isOpen()) return Effect.void
        if (!ok) {
          refuseLogin(session, 5, "invalid user name or password")
          return Effect.void
        }
        session.user = credentials.user
        if (!registry.add(session)) {
          session.user = undefined
          refuseLogin(session, 100, "user already connected")
          return Effect.void
        }
        connection.clearDeadline()
        connection.offer(login!.result(0))
        return Effect.annotateLogs(
          Effect.zipRight(Effect.logInfo("logged in"), options.onJoin ? options.onJoin(session) : Effect.void),
          "user",
          credentials.user
        )
      })
    const handleOne = (session: Live, message: M): Effect.Effect<void, E, R> | void => {
      if (login !== undefined) {
        const credentials = login.credentials(message)
        if (session.user === undefined) {
          if (credentials === undefined) {
            refuseLogin(session, 5, "the first message must be a login")
            return Effect.void
          }
          return logIn(session, credentials)
        }
        if (credentials !== undefined) {
          session.connection.offer(login.result(100, "already logged in"))
          return Effect.void
        }
      }
      return options.handler(session, message)
    }
    // Synchronous while the handler returns nothing; from the first Effect
    // on, the rest of the batch follows it in order.
    const handleFrom = (session: Live, batch: ReadonlyArray<M>, from: number): Effect.Effect<void, E, R> | void => {
      for (let i = from; i < batch.length && session.connection.isOpen(); i++) {
        const result = handleOne(session, batch[i]!)
        if (result !== undefined) return Effect.flatMap(result, () => handleFrom(session, batch, i + 1) ?? Effect.void)
      }
    }
    // Effects the handler returns run in a fiber of their own: give their logs the session's annotations.
    const annotated = <A, E1, R1>(session: Live, effect: Effect.Effect<A, E1, R1>) =>
      Effect.annotateLogs(effect, { session: session.id, remote: session.remote, user: session.user ?? "-" })
    const handleBatch = (session: Live, batch: ReadonlyArray<M>) => {
      const result = handleFrom(session, batch, 0)
      return result === undefined ? undefined : annotated(session, result)
    }
    const sessionEnded = (session: Live, exit: Exit.Exit<never, unknown>) => {
      const connection = session.connection
      const wasRegistered = registry.get(session.user ?? "") === session || login === undefined
      registry.remove(session)
      live.delete(session)
      stats.closed++
      stats.framesIn += connection.stats.framesIn
      stats.framesOut += connection.stats.framesOut
      fork(
        Effect.gen(function*() {
          yield* logExit(exit)
          if (wasRegistered && session.user !== undefined && options.onLeave) {
            const reason = Exit.isFailure(exit)
              ? Option.match(Cause.failureOption(exit.cause), {
                onNone: () => "shutting down",
                onSome: ConnectionError.describe
              })
              : "quit"
            yield* options.onLeave(session, reason)
          }
        }).pipe(
          (effect) => annotated(session, effect),
          Effect.ensuring(Effect.sync(() => settled(session.id)))
        )
      )
    }
    const runSession = (session: Live) => {
      if (login === undefined) registry.add(session)
      // Registered before it starts: a connection can end inside unsafeStart.
      running.set(session.id, noop)
      const stop = session.connection.unsafeStart(
        runtime,
        (batch) => handleBatch(session, batch),
        (exit) => sessionEnded(session, exit)
      )
      if (running.has(session.id)) running.set(session.id, stop)
    }

    /** Waits until every session has ended and its exit handling (logs, onLeave) is done. */
    const allSettled = Effect.async<void>((resume) => {
      if (running.size === 0) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      settledWaiters.push(wake)
      return Effect.sync(() => {
        settledWaiters = settledWaiters.filter((w) => w !== wake)
      })
    })

    const refuse = (socket: Socket.Socket, remote: string) =>
      Effect.gen(function*() {
        stats.refused++
        Metrics.connectionsRefused.unsafeUpdate(1, [])
        const connection = yield* Connection.make(socket, {
          framing: options.framing,
          codec: options.codec,
          heartbeat: { name: "refusal", timeoutMs: 5_000, counts: "any", answers: false, pinger: undefined }
        })
        const reason = `too many connections (limit ${options.maxConnections})`
        const message = options.refuse?.(reason)
        if (message !== undefined) connection.offer(message)
        connection.close(reason)
        yield* Effect.logWarning(`refused connection: ${reason}`).pipe(Effect.annotateLogs("remote", remote))
        yield* Effect.exit(connection.run(() => Effect.void))
      })

    const accept = (socket: Socket.Socket) =>
      Effect.gen(function*() {
        const transport = Transport.fromSocket(socket)
        const remote = transport !== undefined
          ? transport.remote
          : options.peerAddress
          ? yield* options.peerAddress
          : "unknown"
        if (options.maxConnections !== undefined && live.size >= options.maxConnections) {
          return yield* refuse(socket, remote)
        }
        stats.accepted++
        Metrics.connectionsAccepted.unsafeUpdate(1, [])
        const directWrite = options.directWrite && transport === undefined ? yield* options.directWrite : undefined
        const connection = yield* Connection.make(
          socket,
          directWrite ? { ...connectionOptions, directWrite } : connectionOptions
        )
        const session = { id: connection.id, user: undefined as string | undefined, remote, connection }
        live.add(session)
        runSession(session)
      })

    const acceptFiber = yield* Effect.forkScoped(
      socketServer.run(accept).pipe(
        Effect.catchAllCause((cause) => Effect.logError("accept loop failed", cause))
      )
    )

    const drainTimeout = Duration.decode(options.drainTimeout ?? defaultDrainTimeout)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Fiber.interrupt(acceptFiber)
        const open = Array.from(live)
        if (open.length === 0) return
        yield* Effect.logInfo(`draining ${open.length} connections (up to ${Duration.format(drainTimeout)})`)
        const drain = Effect.gen(function*() {
          // 1. Let handlers in flight finish: what they accepted is queued everywhere.
          yield* Effect.forEach(open, (s) => s.connection.pauseInput, { concurrency: "unbounded", discard: true })
          // 2. Say goodbye, flush every queue, close.
          for (const session of open) {
            const bye = options.goodbye?.("shutting down")
            if (bye !== undefined) session.connection.offer(bye)
            session.connection.close("shutting down")
          }
          yield* allSettled
        })
        // Finalizers run uninterruptibly: without `interruptible` the timeout
        // could not stop a drain stuck behind a handler that never returns.
        const finished = yield* Effect.timeout(Effect.interruptible(drain), drainTimeout).pipe(Effect.option)
        if (Option.isNone(finished)) {
          yield* Effect.logWarning(`drain timeout: interrupting ${live.size} connections`)
        }
        for (const stop of Array.from(running.values())) stop()
        yield* allSettled
      })
    )

    return {
      address: socketServer.address,
      registry,
      connections: () => live.size,
      stats
    }
  })
