/**
 * A Tether server on an `@effect/platform` `SocketServer`: one session per
 * accepted socket (its connection started with `Connection.unsafeStart`: under
 * the callback driver no fiber per idle session), an optional login step
 * through the {@link Authenticator}, a connection limit, the
 * {@link Registry.Registry} of live sessions (from the context, or a local
 * one), broadcast and kick, and a graceful drain when the server's scope
 * closes. The session logic lives in `internal/sessions.ts`.
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import type * as Message from "@tether/protocol/Message"
import * as Wire from "@tether/protocol/Wire"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { Authenticator } from "./Authenticator.js"
import type * as Credentials from "./Authenticator.js"
import type * as Connection from "./Connection.js"
import type * as Heartbeat from "./Heartbeat.js"
import * as HeartbeatScheduler from "./HeartbeatScheduler.js"
import { remoteOf, Sessions } from "./internal/sessions.js"
import * as Registry from "./Registry.js"
import type { Session } from "./Session.js"

/**
 * Checks a user's credentials for the login step (its own module;
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
  /** The answer; on success, with the session's resume secret when the dialect has `resumeSecret`. */
  readonly result: (status: Message.LoginStatus, reason?: string, resumeSecret?: string) => M
  /**
   * The resume secret a login presents. A dialect with this function gets
   * a fresh secret in each successful `result`; a login for a name that a
   * live session of this server holds, presenting that session's secret,
   * takes it over (see {@link Options.login}) instead of getting status 100.
   */
  readonly resumeSecret?: (login: M) => string | undefined
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
  /**
   * The login step; without it every connection is a session at once.
   *
   * Takeover: with a dialect that has `resumeSecret`, each successful login
   * is answered with a random secret for that session (a fresh one; a
   * session taken over keeps its secret). A later login
   * for the same name while this server still holds the session (its
   * connection dropped silently: no FIN, the heartbeat has not timed out
   * yet), presenting that secret (compared in constant time), proves it is
   * the same client: the old session is kicked (`"taken over"`, counted in
   * `tether_kicks_total` and logged like any kick), its end is handled
   * (`onLeave`: rooms left, name released), then the new login proceeds
   * as usual. Without the secret, or with a wrong one, the answer is 100 as
   * before. Only a session of this server can be taken over: a name held on
   * another node of a cluster (refused by `admit`) still gets 100 until
   * that node lets it go.
   */
  readonly login?: LoginDialect<NoInfer<M>>
  /**
   * How many live sessions one user may have at once (default `"one"`:
   * a second login with a name in use gets status 100 and is closed). With
   * `"many"` each login is a session of its own, with its own heartbeat and
   * kick; status 100 then only answers a second Login on one connection.
   * Applies to the local registry the server makes when the context has none.
   */
  readonly sessionsPerUser?: Registry.SessionsPerUser
  /**
   * Time from accept to a successful login (default 10 s). No heartbeat
   * pings go out before the login: the peer's first answer is the login's.
   */
  readonly loginTimeout?: Duration.DurationInput
  /**
   * Bytes a connection may send before its login succeeds (default 64 KiB):
   * an unauthenticated peer cannot make the server buffer or parse more.
   */
  readonly maxLoginBytes?: number
  /** Connections beyond this many get `refuse(reason)` (if given) and are closed. */
  readonly maxConnections?: number
  /**
   * Connections that have not logged in yet, at most (default unlimited): their
   * own, smaller budget, so a flood of peers that never log in cannot take the
   * slots of real users. Beyond it (and when the server is at
   * `maxConnections`) the oldest connection not logged in is closed to make
   * room for the new one: a real user logs in within moments of connecting,
   * an idle peer is the one nearest its login timeout.
   */
  readonly maxPending?: number
  /** The same, per remote address (default unlimited). */
  readonly maxPendingPerAddress?: number
  /** A per-session rate limit on the messages handed to `handler` (default none). */
  readonly rateLimit?: RateLimit<NoInfer<M>>
  readonly refuse?: (reason: string) => NoInfer<M> | undefined
  /** The message sent to a session the server closes (kick, shutdown). */
  readonly goodbye?: (reason: string) => NoInfer<M> | undefined
  /** How long shutdown waits for handlers and queues (default 10 s) before interrupting. */
  readonly drainTimeout?: Duration.DurationInput
  /**
   * Handles each message of a live session, in order. Its failure ends that
   * session only. Returning nothing (having done the work synchronously, e.g.
   * with `session.unsafeSend`) is the fast path: no Effect, no fiber.
   */
  readonly handler: (session: Session<M>, message: M) => Effect.Effect<void, E, R> | void
  /**
   * Called after authentication, before the login is answered: false refuses
   * the login with status 100 (e.g. a name held on another node of a cluster).
   */
  readonly admit?: (session: Session<M>) => Effect.Effect<boolean, never, R>
  /** Called once a session is logged in (its `LoginResult` queued), with its login message; later input waits for it. */
  readonly onJoin?: (session: Session<M>, login: M) => Effect.Effect<void, never, R>
  readonly onLeave?: (session: Session<M>, reason: string) => Effect.Effect<void, never, R>
  /**
   * Which driver runs the sessions' connections over sockets that carry a
   * Transport (default `callback`: no fiber per idle session; `fiber`: the
   * card's reader / writer / heartbeat fibers, e.g. to measure their cost).
   */
  readonly driver?: Connection.Driver
  /**
   * Run every connection's liveness (pings, timeouts, login deadline) on one
   * scheduler fiber for the whole server, under the callback driver
   * (default true: a fiber and a timer less per connection).
   */
  readonly sharedHeartbeat?: boolean
  /** Describes the peer of an accepted socket without a transport (the Node layer supplies `host:port`). */
  readonly peerAddress?: Effect.Effect<string>
}

/**
 * A per-session token bucket: `messagesPerSecond` sustained with bursts of
 * `burst`, and optionally `bytesPerSecond` of input (bursts of two seconds'
 * worth). A message over the limit is not handled: the peer gets
 * `refuse(message, retryAfterMs)` when that gives a message, and the refusal
 * is counted (`tether_rate_limited_total`).
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimit<M> {
  readonly messagesPerSecond: number
  readonly burst: number
  readonly bytesPerSecond?: number | undefined
  /** Tokens a message costs (default 1): an expensive request can cost more. */
  readonly cost?: ((message: M) => number) | undefined
  readonly refuse?: ((message: M, retryAfterMs: number) => M | undefined) | undefined
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
  /** The live sessions (logged in, or accepted on a server without login). */
  readonly registry: Registry.Service
  /** Connections accepted and running, logged in or not. */
  readonly connections: () => number
  readonly stats: Readonly<Stats>
  /** The server's wire (its framing and codec bound once). */
  readonly wire: Wire.Wire<M>
  /**
   * Encodes `message` once and queues it to every live session (but
   * `except`) without suspending: a session whose queue is full is closed as
   * a slow consumer. Returns how many sessions it was queued to.
   */
  readonly unsafeBroadcast: (message: M, options?: { readonly except?: Session<M> | undefined }) => number
  /** `unsafeBroadcast` as an Effect. */
  readonly broadcast: (message: M, options?: { readonly except?: Session<M> | undefined }) => Effect.Effect<number>
  /** Sends the goodbye message (if the protocol has one), flushes, and closes. */
  readonly kick: (session: Session<M>, reason: string) => Effect.Effect<void>
  /**
   * A second source of sessions: makes `socket`, accepted elsewhere (a
   * WebSocket upgraded by an HTTP route), a session of this server, with the
   * same registry, broadcasts, login, heartbeats, limits and drain as the
   * sockets of its `SocketServer`. `framing` replaces the server's for this
   * socket (e.g. `Frame.messages` for a WebSocket); the codec stays the
   * server's, so a broadcast is still encoded once for every source. After
   * the server started draining, the socket is refused and closed.
   */
  readonly accept: (
    socket: Socket.Socket,
    options: { readonly remote: string; readonly framing?: Frame.Framing | undefined }
  ) => Effect.Effect<void>
}

/**
 * Default drain timeout: 10 s, as in the echo-server article.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultDrainTimeout: Duration.DurationInput = "10 seconds"

/**
 * Default bytes a connection may send before it has logged in.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultMaxLoginBytes = 64 * 1024

/**
 * Default login timeout.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultLoginTimeout: Duration.DurationInput = "10 seconds"

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
    const registry = Option.getOrElse(
      yield* Effect.serviceOption(Registry.Registry),
      () => Registry.makeLocal({ sessionsPerUser: options.sessionsPerUser })
    )
    const heartbeatScheduler = options.sharedHeartbeat === false ? undefined : yield* HeartbeatScheduler.make
    const wire = Wire.make(options.framing, options.codec)
    const connectionOptions: Connection.Options<M> = {
      framing: options.framing,
      codec: options.codec,
      wire,
      ...(heartbeatScheduler ? { heartbeatScheduler } : {}),
      ...(options.driver ? { driver: options.driver } : {}),
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.dialect ? { dialect: options.dialect } : {}),
      ...(options.outbound ? { outbound: options.outbound } : {}),
      ...(options.maxInbound ? { maxInbound: options.maxInbound } : {}),
      ...(options.maxInboundBytes ? { maxInboundBytes: options.maxInboundBytes } : {}),
      ...(options.login
        ? {
          deadline: {
            after: options.loginTimeout ?? defaultLoginTimeout,
            what: "login",
            quiet: true,
            maxBytes: options.maxLoginBytes ?? defaultMaxLoginBytes
          }
        }
        : {})
    }
    // Sessions run without a fiber of their own (Connection.unsafeStart);
    // their handler fibers and end handling run on this runtime.
    const runtime = yield* Effect.runtime<R>()
    const clock = yield* Effect.clock
    const sessions = new Sessions<M, E, R>(
      options,
      wire,
      registry,
      authenticator,
      runtime,
      connectionOptions,
      () => clock.unsafeCurrentTimeMillis()
    )

    const acceptFiber = yield* Effect.forkScoped(
      socketServer.run((socket) =>
        Effect.flatMap(remoteOf(socket, options.peerAddress), (remote) => sessions.accept(socket, remote))
      ).pipe(Effect.catchAllCause((cause) => Effect.logError("accept loop failed", cause)))
    )

    // Connection options per framing of other sources, each framing bound to the codec once.
    const optionsByFraming = new WeakMap<Frame.Framing, Connection.Options<M>>()
    const optionsFor = (framing: Frame.Framing | undefined): Connection.Options<M> => {
      if (framing === undefined || framing === options.framing) return connectionOptions
      let found = optionsByFraming.get(framing)
      if (found === undefined) {
        found = { ...connectionOptions, framing, wire: Wire.make(framing, options.codec) }
        optionsByFraming.set(framing, found)
      }
      return found
    }

    const drainTimeout = Duration.decode(options.drainTimeout ?? defaultDrainTimeout)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        sessions.closed = true
        yield* Fiber.interrupt(acceptFiber)
        const open = sessions.running.size
        if (open === 0) return
        yield* Effect.logInfo(`draining ${open} connections (up to ${Duration.format(drainTimeout)})`)
        // Finalizers run uninterruptibly: without `interruptible` the timeout
        // could not stop a drain stuck behind a handler that never returns.
        const finished = yield* Effect.timeout(Effect.interruptible(sessions.drain()), drainTimeout).pipe(Effect.option)
        if (Option.isNone(finished)) {
          yield* Effect.logWarning(`drain timeout: interrupting ${sessions.running.size} connections`)
        }
        sessions.stopAll()
        yield* sessions.allSettled
      })
    )

    return {
      address: socketServer.address,
      registry,
      connections: () => sessions.running.size,
      stats: sessions.stats,
      wire,
      unsafeBroadcast: (message, opts) => sessions.unsafeBroadcast(message, opts),
      broadcast: (message, opts) => Effect.sync(() => sessions.unsafeBroadcast(message, opts)),
      kick: (session, reason) => Effect.sync(() => sessions.kick(session, reason)),
      accept: (socket, opts) => sessions.accept(socket, opts.remote, optionsFor(opts.framing))
    } satisfies Server<M>
  })
