/**
 * The login step's port: checks the credentials of a login attempt (a
 * password or a signed token) and says yes or no. Decorators add policy
 * around any authenticator: {@link throttled} slows down failed logins per
 * remote address and per user.
 *
 * Node-specific credential stores (scrypt password hashes, HMAC tokens) live
 * in `@tether/node/Credentials`.
 *
 * @since 0.1.0
 */
import * as Printable from "@tether/protocol/Printable"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metrics from "./Metrics.js"

/**
 * What a login message carries: a user name and a password or a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly user: string
  readonly password?: string | undefined
  readonly token?: string | undefined
}

/**
 * A login attempt: the credentials and the peer's `host:port`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Attempt extends Credentials {
  readonly remote: string
}

/**
 * Checks a user's credentials for the login step.
 *
 * @since 0.1.0
 * @category services
 */
export class Authenticator extends Context.Tag("@tether/runtime/Authenticator")<Authenticator, {
  readonly authenticate: (attempt: Attempt) => Effect.Effect<boolean>
}>() {
  /**
   * Any user name with any non-empty password (a demo; no token is accepted).
   *
   * @since 0.1.0
   */
  static readonly layerAnyone: Layer.Layer<Authenticator> = Layer.succeed(Authenticator, {
    authenticate: (attempt) => Effect.succeed(attempt.password !== undefined && attempt.password.length > 0)
  })

  /**
   * A fixed table of user -> password held in memory (tests and demos; a
   * server reads hashed passwords with `@tether/node/Credentials`). Any
   * name works, `__proto__` included.
   *
   * @since 0.1.0
   */
  static readonly layerUsers = (users: Readonly<Record<string, string>>): Layer.Layer<Authenticator> => {
    const table = new Map(Object.entries(users))
    return Layer.succeed(Authenticator, {
      authenticate: (attempt) =>
        Effect.succeed(attempt.password !== undefined && table.get(attempt.user) === attempt.password)
    })
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ThrottleOptions {
  /** Wait imposed after the first failure; doubles with each further one (default 250 ms). */
  readonly baseDelay?: Duration.DurationInput
  /** The longest wait between two attempts on one key (default 5 s). */
  readonly maxDelay?: Duration.DurationInput
  /**
   * An attempt whose turn is further away than this is refused at once,
   * unchecked (default 10 s, the default login timeout): no attempt waits
   * longer, however many queue up.
   */
  readonly maxWait?: Duration.DurationInput
  /** A key with no failure for this long is forgotten (default 15 minutes). */
  readonly forgetAfter?: Duration.DurationInput
  /** Keys tracked at most; past it the least recently failed are forgotten (default 10,000). */
  readonly maxTracked?: number
}

/**
 * The host part of `host:port` (IPv6 included: the port follows the last colon).
 *
 * @since 0.1.0
 * @category utils
 */
export const hostOf = (remote: string): string => {
  const colon = remote.lastIndexOf(":")
  return colon <= 0 ? remote : remote.slice(0, colon)
}

interface Entry {
  failures: number
  /** When the next attempt on this key may be checked. */
  nextAt: number
  lastFailure: number
}

/**
 * A login throttle's state and rules, without Effect (see {@link throttled}).
 * Keys are `a:<host>` (remote address) and `u:<user>`.
 *
 * @since 0.1.0
 * @category throttling
 */
export class Throttle {
  private readonly entries = new Map<string, Entry>()
  private readonly base: number
  private readonly max: number
  private readonly maxWait: number
  private readonly forget: number
  private readonly maxTracked: number
  constructor(options: ThrottleOptions = {}) {
    this.base = Duration.toMillis(options.baseDelay ?? "250 millis")
    this.max = Duration.toMillis(options.maxDelay ?? "5 seconds")
    this.maxWait = Duration.toMillis(options.maxWait ?? "10 seconds")
    this.forget = Duration.toMillis(options.forgetAfter ?? "15 minutes")
    this.maxTracked = options.maxTracked ?? 10_000
  }
  /** Keys tracked now. */
  get size(): number {
    return this.entries.size
  }
  /** The delay after `failures` failures. */
  delay(failures: number): number {
    return failures <= 0 ? 0 : Math.min(this.max, this.base * 2 ** Math.min(failures - 1, 30))
  }
  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry !== undefined && now - entry.lastFailure > this.forget) {
      this.entries.delete(key)
      return undefined
    }
    return entry
  }
  /**
   * Reserves the next turn of an attempt on `keys` at `now`: the ms to wait
   * before checking it, or "refuse" when that is beyond `maxWait`.
   * Concurrent attempts on one key get successive turns, so parallel
   * guesses are slowed as much as sequential ones.
   */
  reserve(keys: ReadonlyArray<string>, now: number): number | "refuse" {
    let at = now
    const live: Array<Entry> = []
    for (const key of keys) {
      const entry = this.live(key, now)
      if (entry === undefined) continue
      live.push(entry)
      if (entry.nextAt > at) at = entry.nextAt
    }
    if (at - now > this.maxWait) return "refuse"
    for (const entry of live) entry.nextAt = at + this.delay(entry.failures)
    return at - now
  }
  /** Records a failed attempt on each key; returns the most failures of any of them. */
  failed(keys: ReadonlyArray<string>, now: number): number {
    let most = 0
    for (const key of keys) {
      const entry = this.live(key, now) ?? { failures: 0, nextAt: now, lastFailure: now }
      entry.failures++
      entry.lastFailure = now
      entry.nextAt = Math.max(entry.nextAt, now + this.delay(entry.failures))
      // Re-inserted: the map's order is least recently failed first.
      this.entries.delete(key)
      this.entries.set(key, entry)
      if (entry.failures > most) most = entry.failures
    }
    while (this.entries.size > this.maxTracked) {
      this.entries.delete(this.entries.keys().next().value!)
    }
    return most
  }
  /** Forgets `key` (a successful login forgets its user's failures). */
  succeeded(key: string): void {
    this.entries.delete(key)
  }
}

/**
 * Decorates `inner` with a login throttle: each failed login makes the next
 * attempt from the same remote address, and for the same user, wait longer
 * (250 ms, doubling, up to 5 s by default; time from `Clock`); an attempt
 * that would wait past `maxWait` is refused unchecked. A success forgets the
 * user's failures (not the address's). Each failure is logged at Warning with
 * the target user (escaped, bounded; the server counts it in `Metrics.loginFailures`);
 * each refusal unchecked in `Metrics.loginsThrottled`.
 *
 * @example
 * ```ts
 * import * as Authenticator from "@tether/runtime/Authenticator"
 * import * as Layer from "effect/Layer"
 *
 * const auth = Layer.effect(
 *   Authenticator.Authenticator,
 *   Authenticator.throttled({ maxDelay: "5 seconds" })
 * ).pipe(Layer.provide(Authenticator.Authenticator.layerUsers({ alice: "pw" })))
 * ```
 *
 * @since 0.1.0
 * @category throttling
 */
export const throttled = (
  options: ThrottleOptions = {}
): Effect.Effect<Authenticator["Type"], never, Authenticator> =>
  Effect.map(Authenticator, (inner) => throttle(inner, new Throttle(options)))

/**
 * {@link throttled} over a given authenticator and throttle state.
 *
 * @since 0.1.0
 * @category throttling
 */
export const throttle = (inner: Authenticator["Type"], state: Throttle): Authenticator["Type"] => ({
  authenticate: (attempt) =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const keys = [`a:${hostOf(attempt.remote)}`, `u:${attempt.user}`]
      const user = Printable.forLog(attempt.user, 64)
      const wait = state.reserve(keys, clock.unsafeCurrentTimeMillis())
      if (wait === "refuse") {
        Metrics.loginsThrottled.unsafeUpdate(1, [])
        yield* Effect.logWarning("login refused unchecked: too many failed logins").pipe(
          Effect.annotateLogs({ user, remote: attempt.remote })
        )
        return false
      }
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      const ok = yield* inner.authenticate(attempt)
      if (ok) {
        state.succeeded(keys[1]!)
        return true
      }
      const failures = state.failed(keys, clock.unsafeCurrentTimeMillis())
      yield* Effect.logWarning("login failed").pipe(
        Effect.annotateLogs({ user, remote: attempt.remote, failures, nextDelayMs: state.delay(failures) })
      )
      return false
    })
})
