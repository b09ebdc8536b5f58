/**
 * A server's sessions: accepting a socket, the login step, handing messages
 * to the handler, and what happens when a session ends. `Server.make` builds
 * one of these and wires it to the socket server; the logic is shared by
 * every session (a session costs its own objects, not closures).
 *
 * @internal
 */
import type * as Socket from "@effect/platform/Socket"
import * as Wire from "@tether/protocol/Wire"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Connection from "../Connection.js"
import * as ConnectionError from "../ConnectionError.js"
import * as Metrics from "../Metrics.js"
import type * as Registry from "../Registry.js"
import type * as Server from "../Server.js"
import { Session } from "../Session.js"
import * as Transport from "../Transport.js"
import { LoginStep, Running } from "./login.js"
import * as RateLimit from "./rateLimit.js"

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

const hostOf = (remote: string) => {
  const colon = remote.lastIndexOf(":")
  return colon > 0 ? remote.slice(0, colon) : remote
}

/** @internal */
export class Sessions<M, E, R> {
  /** Every accepted session, logged in or not, until its end has been handled. */
  readonly running = new Map<number, Running<M>>()
  readonly stats: Server.Stats = { accepted: 0, refused: 0, closed: 0, framesIn: 0, framesOut: 0 }
  private settledWaiters: Array<() => void> = []
  private readonly fork: <A, E2>(effect: Effect.Effect<A, E2, R>) => unknown
  private readonly connectionOptions: Connection.Options<M>
  private readonly login: LoginStep<M, R>

  constructor(
    private readonly options: Server.Options<M, E, R>,
    readonly wire: Wire.Wire<M>,
    readonly registry: Registry.Service,
    authenticator: Server.Authenticator["Type"],
    private readonly runtime: Runtime.Runtime<R>,
    connectionOptions: Connection.Options<M>,
    private readonly now: () => number
  ) {
    this.fork = Runtime.runFork(runtime)
    this.login = new LoginStep<M, R>({
      options,
      registry,
      authenticator,
      running: this.running,
      kick: (session, reason) => this.kick(session, reason),
      admittedOrGone: (session) => this.admittedOrGone(session)
    })
    this.connectionOptions = connectionOptions
  }

  // --- accept ---

  /** Accepted and not logged in yet, oldest first: in all, and by host. */
  private readonly pending = new Set<Running<M>>()
  private readonly pendingByHost = new Map<string, Set<Running<M>>>()

  /** Set when the server stops accepting (the drain): later sockets from any source are refused. */
  closed = false

  /**
   * Makes `socket` a session. `connectionOptions` (default: the server's)
   * give another source its own framing and wire (a WebSocket's messages);
   * the codec is the server's, so a broadcast is encoded once for all.
   */
  accept(
    socket: Socket.Socket,
    remote: string,
    connectionOptions: Connection.Options<M> = this.connectionOptions
  ): Effect.Effect<void> {
    const options = this.options
    // Draining: the goodbye a live session gets, not the limit's refusal.
    if (this.closed) return this.refuse(socket, remote, connectionOptions, "shutting down", options.goodbye)
    if (options.maxConnections !== undefined && this.running.size >= options.maxConnections) {
      // Full: a connection that has not logged in gives way to the new one (the
      // oldest, nearest its login timeout), so idle peers cannot keep real users out.
      if (options.login === undefined || !this.evictOldest(this.pending, `too many connections (limit ${options.maxConnections})`)) {
        return this.refuse(socket, remote, connectionOptions, `too many connections (limit ${options.maxConnections})`, options.refuse)
      }
    }
    const host = hostOf(remote)
    if (options.login !== undefined) {
      if (options.maxPending !== undefined && this.pending.size >= options.maxPending) {
        this.evictOldest(this.pending, `more than ${options.maxPending} connections not logged in`)
      }
      const perHost = options.maxPendingPerAddress
      const fromHost = this.pendingByHost.get(host)
      if (perHost !== undefined && fromHost !== undefined && fromHost.size >= perHost) {
        this.evictOldest(fromHost, `more than ${perHost} connections not logged in from ${host}`)
      }
    }
    return Effect.flatMap(Connection.make(socket, connectionOptions), (connection) =>
      Effect.sync(() => {
        this.stats.accepted++
        Metrics.connectionsAccepted.unsafeUpdate(1, [])
        const session = new Running(remote, connection)
        if (options.login !== undefined) {
          session.pending = host
          this.pending.add(session)
          let set = this.pendingByHost.get(host)
          if (set === undefined) this.pendingByHost.set(host, set = new Set())
          set.add(session)
        }
        if (options.rateLimit !== undefined) session.rate = RateLimit.bucket(options.rateLimit, this.now())
        this.run(session)
      }))
  }

  /**
   * Closes the oldest session of `among` that has not logged in (it gets the
   * protocol's refusal, as a refused connection does); false if there is none.
   */
  private evictOldest(among: ReadonlySet<Running<M>>, why: string): boolean {
    const oldest = among.values().next()
    if (oldest.done) return false
    const session = oldest.value
    this.admittedOrGone(session)
    Metrics.admissionsRefused.unsafeUpdate(1, [])
    const reason = `not logged in, closed to make room: ${why}`
    const message = this.options.refuse?.(reason)
    if (message !== undefined) session.unsafeSend(message)
    session.connection.close(reason)
    return true
  }

  /** The session is logged in (or gone): it leaves the pending budget. */
  private admittedOrGone(session: Running<M>): void {
    const host = session.pending
    if (host === undefined) return
    session.pending = undefined
    this.pending.delete(session)
    const set = this.pendingByHost.get(host)
    if (set !== undefined) {
      set.delete(session)
      if (set.size === 0) this.pendingByHost.delete(host)
    }
  }

  private run(session: Running<M>): void {
    if (this.options.login === undefined) this.registry.add(session)
    // Registered before it starts: a connection can end inside unsafeStart.
    this.running.set(session.id, session)
    const stop = session.connection.unsafeStart(
      this.runtime,
      (batch) => this.handleBatch(session, batch),
      (exit) => this.ended(session, exit)
    )
    if (this.running.has(session.id)) session.stop = stop
  }

  private refuse(
    socket: Socket.Socket,
    remote: string,
    connectionOptions: Connection.Options<M>,
    reason: string,
    say: ((reason: string) => M | undefined) | undefined
  ): Effect.Effect<void> {
    const options = this.options
    return Effect.gen(this, function*() {
      this.stats.refused++
      Metrics.connectionsRefused.unsafeUpdate(1, [])
      const connection = yield* Connection.make(socket, {
        framing: connectionOptions.framing,
        codec: options.codec,
        wire: connectionOptions.wire ?? this.wire,
        heartbeat: { name: "refusal", timeoutMs: 5_000, counts: "any", answers: false, pinger: undefined }
      })
      const message = say?.(reason)
      if (message !== undefined) connection.unsafeSend(message)
      connection.close(reason)
      yield* Effect.logWarning(`refused connection: ${reason}`).pipe(Effect.annotateLogs("remote", remote))
      yield* Effect.exit(connection.run(() => Effect.void))
    })
  }

  // --- messages ---

  private handleOne(session: Session<M>, message: M): Effect.Effect<void, E, R> | void {
    const login = this.options.login
    if (login !== undefined) {
      const credentials = login.credentials(message)
      if (session.user === undefined) {
        if (credentials === undefined) {
          Metrics.loginFailed("not_a_login")
          this.login.refuseLogin(session, 5, "the first message must be a login")
          return
        }
        return this.login.logIn(session, message, credentials)
      }
      if (credentials !== undefined) {
        session.unsafeSend(login.result(100, "already logged in"))
        return
      }
    }
    const rate = (session as Running<M>).rate
    if (rate !== undefined && !RateLimit.take(this.options.rateLimit!, rate, session, message, this.now())) return
    return this.options.handler(session, message)
  }

  /** Synchronous while the handler returns nothing; from the first Effect on, the rest of the batch follows it in order. */
  private handleFrom(session: Session<M>, batch: ReadonlyArray<M>, from: number): Effect.Effect<void, E, R> | void {
    const connection = session.connection
    // No login step and no rate limit (echo, relays): straight to the handler.
    const one = this.options.login === undefined && (session as Running<M>).rate === undefined
      ? this.options.handler
      : this.checkedHandler
    for (let i = from; i < batch.length && connection.isOpen(); i++) {
      const result = one(session, batch[i]!)
      if (result !== undefined) {
        return Effect.flatMap(result, () => this.handleFrom(session, batch, i + 1) ?? Effect.void)
      }
    }
  }

  /** `handleOne` as a function: the login and rate checks, then the handler. */
  private readonly checkedHandler = (session: Session<M>, message: M) => this.handleOne(session, message)


  private handleBatch(session: Session<M>, batch: ReadonlyArray<M>) {
    const result = this.handleFrom(session, batch, 0)
    return result === undefined ? undefined : annotated(session, result)
  }

  // --- the end of a session ---

  private ended(session: Running<M>, exit: Exit.Exit<never, unknown>): void {
    this.admittedOrGone(session)
    const connection = session.connection
    const wasRegistered = this.registry.has(session)
    this.registry.remove(session)
    const stats = this.stats
    stats.closed++
    stats.framesIn += connection.stats.framesIn
    stats.framesOut += connection.stats.framesOut
    const onLeave = this.options.onLeave
    this.fork(
      Effect.gen(function*() {
        yield* logExit(exit)
        if (wasRegistered && session.user !== undefined && onLeave) {
          const reason = Exit.isFailure(exit)
            ? Option.match(Cause.failureOption(exit.cause), {
              onNone: () => "shutting down",
              onSome: ConnectionError.describe
            })
            : "quit"
          yield* onLeave(session, reason)
        }
      }).pipe(
        (effect) => annotated(session, effect),
        Effect.ensuring(Effect.sync(() => this.settled(session.id)))
      )
    )
  }

  private settled(id: number): void {
    const session = this.running.get(id)
    this.running.delete(id)
    const waiters = session?.onSettled
    if (waiters !== undefined) {
      session!.onSettled = undefined
      for (const w of waiters) w()
    }
    if (this.running.size === 0 && this.settledWaiters.length > 0) {
      const waiters = this.settledWaiters
      this.settledWaiters = []
      for (const w of waiters) w()
    }
  }

  /** Waits until every session has ended and its end has been handled (logs, onLeave). */
  readonly allSettled: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.running.size === 0) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    this.settledWaiters.push(wake)
    return Effect.sync(() => {
      this.settledWaiters = this.settledWaiters.filter((w) => w !== wake)
    })
  })

  // --- what the server offers its handlers ---

  unsafeBroadcast(message: M, options?: { readonly except?: Session<M> | undefined }): number {
    // Encoded once for all sessions (they share the server's wire).
    const shared = Wire.share(this.wire, message)
    let delivered = 0
    for (const session of this.registry.list()) {
      if (session === options?.except) continue
      if (session.unsafeSend(shared)) delivered++
    }
    return delivered
  }

  kick(session: Session<M>, reason: string): void {
    const bye = this.options.goodbye?.(reason)
    if (bye !== undefined) session.unsafeSend(bye)
    session.connection.close(reason)
    Metrics.kicks.unsafeUpdate(1, [MetricLabel.make("reason", reason)])
  }

  /** The drain: pause input everywhere, say goodbye, flush and close every session. */
  drain(): Effect.Effect<void> {
    const open = Array.from(this.running.values())
    return Effect.gen(this, function*() {
      // 1. Let handlers in flight finish: what they accepted is queued everywhere.
      yield* Effect.forEach(open, (s) => s.connection.pauseInput, { concurrency: "unbounded", discard: true })
      // 2. Say goodbye, flush every queue, close.
      for (const session of open) {
        const bye = this.options.goodbye?.("shutting down")
        if (bye !== undefined) session.unsafeSend(bye)
        session.connection.close("shutting down")
      }
      yield* this.allSettled
    })
  }

  /** Interrupts every session still running. */
  stopAll(): void {
    for (const session of Array.from(this.running.values())) session.stop()
  }
}

/** Effects a handler returns run in a fiber of their own: give their logs the session's annotations. */
const annotated = <A, E1, R1>(session: Session<any>, effect: Effect.Effect<A, E1, R1>) =>
  Effect.annotateLogs(effect, { session: session.id, remote: session.remote, user: session.user ?? "-" })

/** The peer address of an accepted socket: from its transport, else `peerAddress`. @internal */
export const remoteOf = (socket: Socket.Socket, peerAddress: Effect.Effect<string> | undefined): Effect.Effect<string> => {
  const transport = Transport.fromSocket(socket)
  return transport !== undefined ? Effect.succeed(transport.remote) : peerAddress ?? Effect.succeed("unknown")
}
