/**
 * The server's login step: credentials checked, the name registered (or a
 * live session of the same client taken over, when the login presents that
 * session's resume secret), the `admit` check, and the answer with the
 * session's resume secret (fresh; kept across a takeover, so a client cut
 * off again before it read its new `LoginResult` can still prove itself). `Sessions` runs it for every login message.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Credentials from "../Authenticator.js"
import { Kicked } from "../ConnectionError.js"
import * as Metrics from "../Metrics.js"
import type * as Registry from "../Registry.js"
import type * as Server from "../Server.js"
import { Session } from "../Session.js"
import type * as RateLimit from "./rateLimit.js"
import * as ResumeSecret from "./resumeSecret.js"

const noop = () => {}

/** A session as the server runs it: with the function that stops its connection. @internal */
export class Running<M> extends Session<M> {
  stop: () => void = noop
  /** Accepted, not logged in yet: counted in the pending budget (by `host`). */
  pending: string | undefined = undefined
  /** Its token bucket, when the server has a rate limit. */
  rate: RateLimit.Bucket | undefined = undefined
  /** Its resume secret (logged in, with a dialect that has them): what a takeover must present. */
  secret: string | undefined = undefined
  /** Called once its end has been handled (a takeover waits for this). */
  onSettled: Array<() => void> | undefined = undefined
}

/** How long a takeover lets the old connection flush its goodbye before aborting it. */
const takeoverGraceMs = 1_000
/** The kick reason of a session taken over by a resume login. */
const takenOver = "taken over"

/** What the login step needs of the server's sessions. @internal */
export interface Host<M, R> {
  readonly options: Server.Options<M, any, R>
  readonly registry: Registry.Service
  readonly authenticator: Server.Authenticator["Type"]
  /** Every accepted session until its end has been handled. */
  readonly running: ReadonlyMap<number, Running<M>>
  readonly kick: (session: Session<M>, reason: string) => void
  /** The session is logged in (or gone): it leaves the pending budget. */
  readonly admittedOrGone: (session: Running<M>) => void
}

/** @internal */
export class LoginStep<M, R> {
  constructor(private readonly host: Host<M, R>) {}

  refuseLogin(session: Session<M>, status: 5 | 100, reason: string): void {
    const login = this.host.options.login
    if (login) session.unsafeSend(login.result(status, reason))
    session.connection.close(reason)
  }

  logIn(session: Session<M>, login: M, credentials: Credentials.Credentials) {
    return Effect.flatMap(this.host.authenticator.authenticate({ ...credentials, remote: session.remote }), (ok) => {
      const connection = session.connection
      if (!connection.isOpen()) return Effect.void
      if (!ok) {
        Metrics.loginFailed("invalid_credentials")
        this.refuseLogin(session, 5, "invalid user name or password")
        return Effect.void
      }
      session.user = credentials.user
      if (!this.host.registry.add(session)) {
        const holder = this.takeoverOf(login, credentials.user)
        if (holder !== undefined) return this.takeOver(session, holder, login, credentials.user)
        session.user = undefined
        Metrics.loginFailed("user_in_use")
        this.refuseLogin(session, 100, "user already connected")
        return Effect.void
      }
      return this.registered(session, login, credentials.user)
    })
  }

  /**
   * The live session of this server that `login` may take over: the one
   * holding `user`, when the login presents its resume secret.
   */
  private takeoverOf(login: M, user: string): Running<M> | undefined {
    const presented = this.host.options.login?.resumeSecret?.(login)
    if (presented === undefined) return undefined
    const holder = this.host.registry.get(user)
    if (holder === undefined || this.host.running.get(holder.id) !== holder) return undefined
    const secret = (holder as Running<M>).secret
    return secret !== undefined && ResumeSecret.matches(secret, presented) ? holder as Running<M> : undefined
  }

  /**
   * Kicks `old` (same user, its secret presented), waits until its end has
   * been handled (its rooms left, its name released), then logs `session` in.
   */
  private takeOver(session: Session<M>, old: Running<M>, login: M, user: string): Effect.Effect<void, never, R> {
    // One takeover at a time: a login presenting it while this one runs gets 100.
    const secret = old.secret!
    old.secret = undefined
    this.host.kick(old, takenOver)
    return Effect.logInfo(`session ${old.id} of ${user} taken over by a resume login`).pipe(
      Effect.zipRight(this.whenSettled(old).pipe(
        Effect.timeout(takeoverGraceMs),
        // Its goodbye could not be flushed in time (a peer that stopped reading): end it now.
        Effect.catchAll(() =>
          Effect.zipRight(
            Effect.sync(() => old.connection.abort(new Kicked({ reason: takenOver }))),
            this.whenSettled(old)
          )
        )
      )),
      Effect.zipRight(Effect.suspend(() => {
        if (!session.connection.isOpen()) return Effect.void
        if (!this.host.registry.add(session)) {
          session.user = undefined
          Metrics.loginFailed("user_in_use")
          this.refuseLogin(session, 100, "user already connected")
          return Effect.void
        }
        return this.registered(session, login, user, secret)
      }))
    )
  }

  /** Waits until `session`'s end has been handled (at once if it has). */
  private whenSettled(session: Running<M>): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.host.running.get(session.id) !== session) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      ;(session.onSettled ??= []).push(wake)
      return Effect.sync(() => {
        session.onSettled = session.onSettled?.filter((w) => w !== wake)
      })
    })
  }

  /** Registered under its name: the `admit` check (e.g. the name across a cluster), then logged in. */
  private registered(session: Session<M>, login: M, user: string, secret?: string): Effect.Effect<void, never, R> {
    const connection = session.connection
    const admit = this.host.options.admit
    return admit === undefined
      ? this.admitted(session, login, user, secret)
      : Effect.flatMap(admit(session), (admitted) => {
        if (admitted && connection.isOpen()) return this.admitted(session, login, user, secret)
        this.host.registry.remove(session)
        session.user = undefined
        Metrics.loginFailed("user_in_use")
        this.refuseLogin(session, 100, "user already connected")
        return Effect.void
      })
  }

  private admitted(session: Session<M>, login: M, user: string, inherited: string | undefined) {
    this.host.admittedOrGone(session as Running<M>)
    session.connection.clearDeadline()
    const dialect = this.host.options.login!
    if (dialect.resumeSecret === undefined) session.unsafeSend(dialect.result(0))
    else {
      const secret = inherited ?? ResumeSecret.issue()
      ;(session as Running<M>).secret = secret
      session.unsafeSend(dialect.result(0, undefined, secret))
    }
    const onJoin = this.host.options.onJoin
    return Effect.annotateLogs(
      Effect.zipRight(Effect.logInfo("logged in"), onJoin ? onJoin(session, login) : Effect.void),
      "user",
      user
    )
  }
}
