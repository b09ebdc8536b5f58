/**
 * The classic binary packet protocol of the Go heartbeat demo, bound to the
 * runtime: the heartbeat rules of both sides, the HeartBeat dialect, and the
 * login step on both sides. The packets themselves (framing, Schemas, codec)
 * are `@tether/protocol`'s `Frame.classic` and `Classic`.
 *
 * @example
 * ```ts
 * const server = yield* Server.make({
 *   framing: Frame.classic(),
 *   codec: Classic.codec,
 *   dialect: ClassicProtocol.dialect(now),
 *   heartbeat: ClassicProtocol.serverHeartbeat(),
 *   login: ClassicProtocol.serverLogin(now),
 *   sessionsPerUser: "many",
 *   handler: (session, packet) => { ... }
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as Classic from "@tether/protocol/Classic"
import type * as Duration from "effect/Duration"
import type * as Client from "./Client.js"
import * as Heartbeat from "./Heartbeat.js"
import type * as Server from "./Server.js"

/**
 * The reference server's rule: a HeartBeat every 5 s, only HeartBeats count
 * as a sign of life, 17 s without one closes the connection. The pinging side
 * does not answer HeartBeats (that would echo forever).
 *
 * @since 0.2.0
 * @category heartbeat
 */
export const serverHeartbeat = (options: {
  readonly interval?: Duration.DurationInput
  readonly timeout?: Duration.DurationInput
} = {}): Heartbeat.Policy => ({
  ...Heartbeat.ping({ interval: options.interval ?? "5 seconds", timeout: options.timeout ?? "17 seconds", counts: "pong" }),
  name: "classic",
  answers: false
})

/**
 * The reference client's rule: answer each HeartBeat with a HeartBeat; the
 * server is dead after `timeout` (default 17 s) without one.
 *
 * @since 0.2.0
 * @category heartbeat
 */
export const clientHeartbeat = (options: { readonly timeout?: Duration.DurationInput } = {}): Heartbeat.Policy => ({
  ...Heartbeat.answer({ timeout: options.timeout ?? "17 seconds", counts: "pong" }),
  name: "classic-answer"
})

const heartBeatOnly = (packet: Classic.Packet) => packet.messages.every((m) => m._tag === "HeartBeat")

/**
 * A HeartBeat is both the ping and the reply, stamped with SendTime from
 * `now` (read it from `Clock`).
 *
 * @since 0.2.0
 * @category heartbeat
 */
export const dialect = (now: () => number): Heartbeat.Dialect<Classic.Packet> => ({
  ping: () => Classic.packet(now(), { _tag: "HeartBeat" }),
  replyTo: (packet) => packet.messages.some((m) => m._tag === "HeartBeat")
    ? Classic.packet(now(), { _tag: "HeartBeat" })
    : undefined,
  isPong: (packet) => packet.messages.some((m) => m._tag === "HeartBeat"),
  isControl: heartBeatOnly
})

/**
 * The server's login step: a packet whose first message is a Login, answered
 * with a LoginResponse (0, 5 or 100).
 *
 * @since 0.2.0
 * @category login
 */
export const serverLogin = (now: () => number): Server.LoginDialect<Classic.Packet> => ({
  credentials: (packet) => {
    const first = packet.messages[0]
    return first._tag === "Login" ? { user: first.username, password: first.password } : undefined
  },
  result: (status) => Classic.packet(now(), { _tag: "LoginResponse", status })
})

/**
 * The client's login step.
 *
 * @since 0.2.0
 * @category login
 */
export const clientLogin = (now: () => number, user: string, password: string): Client.Login<Classic.Packet> => ({
  message: Classic.packet(now(), { _tag: "Login", username: user, password }),
  result: (packet) => {
    const answer = packet.messages.find((m) => m._tag === "LoginResponse")
    if (answer === undefined || answer._tag !== "LoginResponse") return undefined
    const reason = answer.status === 5
      ? "invalid username or password"
      : answer.status === 100
      ? "user already connected"
      : `status ${answer.status}`
    return { status: answer.status, reason }
  }
})
