/**
 * Heartbeat policies (when to ping, what counts as a sign of life, when the
 * peer is declared dead) and the dialect interface (what pings and pongs look
 * like in a given protocol; each protocol's module has its own:
 * `TetherProtocol.dialect`, `ClassicProtocol.dialect`, and here `bytes` for
 * raw frames). A connection reads time from `Clock`, so `TestClock` drives
 * every policy.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

/**
 * What heartbeat traffic looks like in one protocol.
 *
 * @since 0.1.0
 * @category models
 */
export interface Dialect<M> {
  /** The ping to send, numbered `seq`. */
  readonly ping: (seq: number) => M
  /** The reply to `message` if it is a ping this side should answer, else `undefined`. */
  readonly replyTo: (message: M) => M | undefined
  /** Whether `message` is (or carries) a heartbeat reply. */
  readonly isPong: (message: M) => boolean
  /** Whether `message` is only heartbeat traffic, not for the handler. */
  readonly isControl: (message: M) => boolean
}

/**
 * Per-connection ping timing: the delay before the first ping, and the delay
 * after each ping given whether the previous one went unanswered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pinger {
  readonly first: () => number
  readonly next: (missed: boolean, now: number) => number
}

/**
 * A heartbeat policy.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly name: string
  /** Silence (in ms) after which the connection fails with `HeartbeatTimeout`; undefined: never. */
  readonly timeoutMs: number | undefined
  /** What refreshes liveness: any inbound frame, or only heartbeat replies. */
  readonly counts: "any" | "pong"
  /** Whether this side answers the peer's pings. */
  readonly answers: boolean
  /** Ping timing for one connection; undefined: this side never pings. */
  readonly pinger: (() => Pinger) | undefined
}

const millis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

const fixed = (intervalMs: number) => (): Pinger => ({
  first: () => intervalMs,
  next: () => intervalMs
})

/**
 * Send a ping every `interval`; fail with `HeartbeatTimeout` when nothing (or,
 * with `counts: "pong"`, no reply) was heard for `timeout`. Also answers the
 * peer's pings.
 *
 * @since 0.1.0
 * @category policies
 */
export const ping = (options: {
  readonly interval: Duration.DurationInput
  readonly timeout: Duration.DurationInput
  readonly counts?: "any" | "pong"
}): Policy => ({
  name: "ping",
  timeoutMs: millis(options.timeout),
  counts: options.counts ?? "any",
  answers: true,
  pinger: fixed(millis(options.interval))
})

/**
 * No pings; any inbound frame extends the deadline (the read-deadline style).
 *
 * @since 0.1.0
 * @category policies
 */
export const idle = (options: { readonly timeout: Duration.DurationInput }): Policy => ({
  name: "idle",
  timeoutMs: millis(options.timeout),
  counts: "any",
  answers: true,
  pinger: undefined
})

/**
 * The answering side: reply to the peer's pings, and fail with
 * `HeartbeatTimeout` when the peer has been silent for `timeout` (a dead
 * server is detected by its clients too).
 *
 * @since 0.1.0
 * @category policies
 */
export const answer = (options: {
  readonly timeout: Duration.DurationInput
  readonly counts?: "any" | "pong"
}): Policy => ({
  name: "answer",
  timeoutMs: millis(options.timeout),
  counts: options.counts ?? "any",
  answers: true,
  pinger: undefined
})

/**
 * Options of {@link adaptive}.
 *
 * @since 0.1.0
 * @category models
 */
export interface AdaptiveOptions {
  /** First interval (default 1 s). */
  readonly initial?: Duration.DurationInput
  /** Longest interval, reached once the link is stable (default 5 s). */
  readonly max?: Duration.DurationInput
  /** Interval right after a missed reply (default 0.5 s). */
  readonly fast?: Duration.DurationInput
  /** How long without a missed reply before the interval relaxes (default 10 s). */
  readonly stableAfter?: Duration.DurationInput
  /** Silence before `HeartbeatTimeout` (default 17 s). */
  readonly timeout?: Duration.DurationInput
}

/**
 * The chat design article's rule: ping every 1 s at first, relax step by step
 * (x1.5 per answered ping) toward 5 s once no reply has been missed for
 * `stableAfter`, drop to 0.5 s right after a missed reply.
 *
 * @since 0.1.0
 * @category policies
 */
export const adaptive = (options: AdaptiveOptions = {}): Policy => {
  const initial = millis(options.initial ?? "1 second")
  const max = millis(options.max ?? "5 seconds")
  const fast = millis(options.fast ?? "500 millis")
  const stableAfter = millis(options.stableAfter ?? "10 seconds")
  return {
    name: "adaptive",
    timeoutMs: millis(options.timeout ?? "17 seconds"),
    counts: "any",
    answers: true,
    pinger: () => {
      let interval = initial
      let stableSince: number | undefined
      return {
        first: () => interval,
        next: (missed, now) => {
          if (missed) {
            interval = fast
            stableSince = now
          } else {
            stableSince ??= now
            if (now - stableSince >= stableAfter) interval = Math.min(max, Math.round(interval * 1.5))
            else if (interval < initial) interval = initial
          }
          return interval
        }
      }
    }
  }
}

/**
 * No heartbeat at all: the connection lives until the socket ends.
 *
 * @since 0.1.0
 * @category policies
 */
export const off: Policy = {
  name: "off",
  timeoutMs: undefined,
  counts: "any",
  answers: true,
  pinger: undefined
}

const PING = new Uint8Array([0x50, 0x49, 0x4e, 0x47])
const PONG = new Uint8Array([0x50, 0x4f, 0x4e, 0x47])

const is4 = (frame: Uint8Array, word: Uint8Array) =>
  frame.length === 4 && frame[0] === word[0] && frame[1] === word[1] && frame[2] === word[2] &&
  frame[3] === word[3]

/**
 * Raw frames (the echo contract): a frame `PING` is the ping, a frame `PONG`
 * the reply. Only `PONG` is control traffic: a peer's `PING` is data.
 *
 * @since 0.1.0
 * @category dialects
 */
export const bytes: Dialect<Uint8Array> = {
  ping: () => PING,
  replyTo: (frame) => is4(frame, PING) ? PONG : undefined,
  isPong: (frame) => is4(frame, PONG),
  isControl: (frame) => is4(frame, PONG)
}
