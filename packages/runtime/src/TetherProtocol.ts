/**
 * Tether's own protocol, bound to the runtime: everything a server or client
 * needs to speak it besides the message Schemas (`@tether/protocol/Message`)
 * and the codec: the heartbeat dialect (`Ping {seq}` answered by
 * `Pong {seq}`), the login step on both sides, request correlation and the
 * request helper.
 *
 * @example
 * ```ts
 * const client = yield* Client.make({
 *   connect: NodeTether.connect({ port: 7373 }),
 *   framing: Frame.lengthPrefixed(),
 *   codec: Codec.json(Message.Message),
 *   dialect: TetherProtocol.dialect,
 *   login: TetherProtocol.clientLogin("alice", "secret"),
 *   correlate: TetherProtocol.correlate
 * })
 * const answer = yield* TetherProtocol.request(client, { op: "time" })
 * ```
 *
 * @since 0.2.0
 */
import type * as Message from "@tether/protocol/Message"
import * as Effect from "effect/Effect"
import type * as Duration from "effect/Duration"
import * as Client from "./Client.js"
import type * as Heartbeat from "./Heartbeat.js"
import type * as Server from "./Server.js"

/**
 * `Ping {seq}` answered by `Pong {seq}`; both are control traffic.
 *
 * @since 0.2.0
 * @category dialects
 */
export const dialect: Heartbeat.Dialect<Message.Message> = {
  ping: (seq) => ({ _tag: "Ping", seq }),
  replyTo: (message) => message._tag === "Ping" ? { _tag: "Pong", seq: message.seq } : undefined,
  isPong: (message) => message._tag === "Pong",
  isControl: (message) => message._tag === "Ping" || message._tag === "Pong"
}

/**
 * The server's login step: `Login {user, password, resumeSecret?}` answered
 * by `LoginResult {status, reason?, resumeSecret?}` (a session's secret:
 * presented again by the same client, it lets a resume login take over a
 * session whose connection the server has not yet seen drop).
 *
 * @since 0.2.0
 * @category login
 */
export const serverLogin: Server.LoginDialect<Message.Message> = {
  credentials: (message) =>
    message._tag === "Login" ? { user: message.user, password: message.password, token: message.token } : undefined,
  result: (status, reason, resumeSecret) => ({
    _tag: "LoginResult",
    status,
    ...(reason !== undefined ? { reason } : {}),
    ...(resumeSecret !== undefined ? { resumeSecret } : {})
  }),
  resumeSecret: (message) => message._tag === "Login" ? message.resumeSecret : undefined
}

/**
 * The client's login step, with a password or a signed login token.
 *
 * @since 0.2.0
 * @category login
 */
export const clientLogin = (user: string, secret: string | { readonly token: string }): Client.Login<Message.Message> => ({
  message: typeof secret === "string" ? { _tag: "Login", user, password: secret } : { _tag: "Login", user, token: secret.token },
  result: (message) =>
    message._tag === "LoginResult"
      ? { status: message.status, reason: message.reason }
      : message._tag === "Failure"
      ? { status: 5, reason: message.message }
      : undefined
})

/**
 * The correlation id of Tether's answers (`Response`, `RequestFailed`, `Ack`, `SayRefused`).
 *
 * @since 0.2.0
 * @category requests
 */
export const correlate = (message: Message.Message): number | undefined => {
  switch (message._tag) {
    case "Response":
    case "RequestFailed":
    case "Ack":
    case "SayRefused":
      return message.id
    default:
      return undefined
  }
}

/**
 * A Tether request: `Request {id, body}` answered by `Response` (its body) or
 * `RequestFailed` (a `RemoteFailure`).
 *
 * @since 0.2.0
 * @category requests
 */
export const request = (
  client: Client.Client<Message.Message>,
  body: Message.Json,
  options?: { readonly timeout?: Duration.DurationInput }
): Effect.Effect<Message.Json, Client.RequestTimeout | Client.ConnectionLost | Client.RemoteFailure> =>
  Effect.flatMap(client.call((id) => ({ _tag: "Request", id, body }), options), (answer) => {
    if (answer._tag === "Response") return Effect.succeed(answer.body)
    if (answer._tag === "RequestFailed") {
      return Effect.fail(new Client.RemoteFailure({ id: answer.id, code: answer.code, detail: answer.message }))
    }
    return Effect.fail(new Client.RemoteFailure({ id: -1, code: "UnexpectedAnswer", detail: answer._tag }))
  })

/**
 * Says `text` in the chat and waits for the server's `Ack` (a `SayRefused`,
 * e.g. over the rate limit, fails with `RemoteFailure` carrying its code).
 *
 * @since 0.2.0
 * @category chat
 */
export const say = (
  client: Client.Client<Message.Message>,
  text: string,
  options?: { readonly timeout?: Duration.DurationInput }
): Effect.Effect<void, Client.RequestTimeout | Client.ConnectionLost | Client.RemoteFailure> =>
  Effect.flatMap(client.call((id) => ({ _tag: "Say", id, text }), options), (answer) =>
    answer._tag === "SayRefused"
      ? Effect.fail(new Client.RemoteFailure({ id: answer.id, code: answer.code, detail: answer.detail ?? "refused" }))
      : Effect.void)
