/**
 * Tether's own protocol: every message is a Schema tagged struct, and
 * {@link Message} is their union. Field limits live in the Schemas, so a
 * message that decodes is a message a handler can trust.
 *
 * The fields (and their limits) are in `Fields`, the messages of rooms and
 * resume in `Rooms`; this module re-exports both, so `Message.X` names every
 * Schema of the protocol. `README.md` of this package describes the messages,
 * their order and their guarantees.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import {
  Epoch,
  Json,
  LoginStatus,
  Millis,
  Offset,
  Password,
  Reason,
  ResumePosition,
  ResumeSecret,
  RoomName,
  Text,
  U32,
  UserName,
  maxResumePositions
} from "./Fields.js"
import * as Rooms from "./Rooms.js"

export * from "./Fields.js"
export * from "./Rooms.js"

/**
 * The first message of a session. `resume` lists the rooms the client was in
 * with the last (epoch, offset) it saw in each: the server rejoins them and
 * answers each with `Recovered` (then the missed `Said`s, in order) or
 * `Unrecoverable`. Without `resume` (or with an empty one) the session starts in `#lobby`.
 * `resumeSecret` is the secret of this client's previous session (from its
 * `LoginResult`): while the server still holds that session (it has not
 * noticed its connection is gone), a login that presents it takes the
 * session over instead of being refused with status 100.
 *
 * @since 0.1.0
 * @category messages
 */
export const Login = Schema.TaggedStruct("Login", {
  user: UserName,
  password: Schema.optionalWith(Password, { exact: true }),
  /** A signed login token instead of a password (1 to 2048 characters). */
  token: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2048)), { exact: true }),
  resume: Schema.optionalWith(Schema.Array(ResumePosition).pipe(Schema.maxItems(maxResumePositions)), { exact: true }),
  resumeSecret: Schema.optionalWith(ResumeSecret, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Login = typeof Login.Type

/**
 * The answer to `Login`: status 0 (logged in), 5 (invalid credentials) or
 * 100 (the name is in use). On success `resumeSecret`, when the server
 * offers takeover, is this session's secret (kept across a takeover): the
 * client keeps it (and never shows it) and presents it in its next `Login`.
 *
 * @since 0.1.0
 * @category messages
 */
export const LoginResult = Schema.TaggedStruct("LoginResult", {
  status: LoginStatus,
  reason: Schema.optionalWith(Reason, { exact: true }),
  resumeSecret: Schema.optionalWith(ResumeSecret, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type LoginResult = typeof LoginResult.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Ping = Schema.TaggedStruct("Ping", { seq: U32 })
/**
 * @since 0.1.0
 * @category messages
 */
export type Ping = typeof Ping.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Pong = Schema.TaggedStruct("Pong", { seq: U32 })
/**
 * @since 0.1.0
 * @category messages
 */
export type Pong = typeof Pong.Type

/**
 * A request; the peer answers with a {@link Response} or a
 * {@link RequestFailed} carrying the same `id`.
 *
 * @since 0.1.0
 * @category messages
 */
export const Request = Schema.TaggedStruct("Request", { id: U32, body: Json })
/**
 * @since 0.1.0
 * @category messages
 */
export type Request = typeof Request.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Response = Schema.TaggedStruct("Response", { id: U32, body: Json })
/**
 * @since 0.1.0
 * @category messages
 */
export type Response = typeof Response.Type

/**
 * The failed answer to the {@link Request} with the same `id`.
 *
 * @since 0.1.0
 * @category messages
 */
export const RequestFailed = Schema.TaggedStruct("RequestFailed", {
  id: U32,
  code: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  message: Schema.String.pipe(Schema.maxLength(1024))
})
/**
 * @since 0.1.0
 * @category messages
 */
export type RequestFailed = typeof RequestFailed.Type

/**
 * A chat line from a client to `room` (default `#lobby`); the server answers
 * {@link Ack} with the same `id` once the line is durable, or
 * `SayRefused`. A client resending a line after a reconnect keeps its `id`:
 * the server acknowledges a repeat without broadcasting it again.
 *
 * @since 0.1.0
 * @category messages
 */
export const Say = Schema.TaggedStruct("Say", {
  id: U32,
  text: Text,
  room: Schema.optionalWith(RoomName, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Say = typeof Say.Type

/**
 * The server has accepted the {@link Say} with this `id`: the line is in its
 * room's history (durable as far as the server's history promises) at
 * (`room`, `epoch`, `offset`) when those are given.
 *
 * @since 0.1.0
 * @category messages
 */
export const Ack = Schema.TaggedStruct("Ack", {
  id: U32,
  room: Schema.optionalWith(RoomName, { exact: true }),
  epoch: Schema.optionalWith(Epoch, { exact: true }),
  offset: Schema.optionalWith(Offset, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Ack = typeof Ack.Type

/**
 * A chat line delivered to the members of its room, at (`epoch`, `offset`)
 * of that room's history: offsets grow by one per line within an epoch, so a
 * client shows a line only if its offset is after the last it saw there.
 * Without `room` the line is in `#lobby`; without `epoch` / `offset` it is
 * not numbered (a server without history).
 *
 * @since 0.1.0
 * @category messages
 */
export const Said = Schema.TaggedStruct("Said", {
  from: UserName,
  text: Text,
  at: Millis,
  seq: U32,
  room: Schema.optionalWith(RoomName, { exact: true }),
  epoch: Schema.optionalWith(Epoch, { exact: true }),
  offset: Schema.optionalWith(Offset, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Said = typeof Said.Type

/**
 * `user` joined `room` (default `#lobby`); sent to the room's other members.
 *
 * @since 0.1.0
 * @category messages
 */
export const Joined = Schema.TaggedStruct("Joined", { user: UserName, room: Schema.optionalWith(RoomName, { exact: true }) })
/**
 * @since 0.1.0
 * @category messages
 */
export type Joined = typeof Joined.Type

/**
 * `user` left `room` (default `#lobby`); sent to the room's other members.
 *
 * @since 0.1.0
 * @category messages
 */
export const Left = Schema.TaggedStruct("Left", {
  user: UserName,
  reason: Reason,
  room: Schema.optionalWith(RoomName, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Left = typeof Left.Type

/**
 * Who is in `room` (default `#lobby`)? Answered by {@link Present}.
 *
 * @since 0.1.0
 * @category messages
 */
export const Who = Schema.TaggedStruct("Who", { room: Schema.optionalWith(RoomName, { exact: true }) })
/**
 * @since 0.1.0
 * @category messages
 */
export type Who = typeof Who.Type

/**
 * The members of `room` (default `#lobby`), sorted.
 *
 * @since 0.1.0
 * @category messages
 */
export const Present = Schema.TaggedStruct("Present", {
  users: Schema.Array(UserName).pipe(Schema.maxItems(100_000)),
  room: Schema.optionalWith(RoomName, { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Present = typeof Present.Type

/**
 * The server is closing this session (kicked, shutting down, ...).
 *
 * @since 0.1.0
 * @category messages
 */
export const Bye = Schema.TaggedStruct("Bye", { reason: Reason })
/**
 * @since 0.1.0
 * @category messages
 */
export type Bye = typeof Bye.Type

/**
 * A protocol-level failure the peer should know about (e.g. too many
 * connections), usually followed by a close.
 *
 * @since 0.1.0
 * @category messages
 */
export const Failure = Schema.TaggedStruct("Failure", {
  code: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  message: Schema.String.pipe(Schema.maxLength(1024))
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Failure = typeof Failure.Type

/**
 * Every Tether message.
 *
 * @since 0.1.0
 * @category messages
 */
export const Message = Schema.Union(
  Login,
  LoginResult,
  Ping,
  Pong,
  Request,
  Response,
  RequestFailed,
  Say,
  Ack,
  Said,
  Joined,
  Left,
  Who,
  Present,
  Bye,
  Failure,
  Rooms.Join,
  Rooms.Leave,
  Rooms.Rooms,
  Rooms.RoomList,
  Rooms.RoomJoined,
  Rooms.RoomLeft,
  Rooms.RoomRefused,
  Rooms.Recovered,
  Rooms.Unrecoverable,
  Rooms.SayRefused
)

/**
 * @since 0.1.0
 * @category messages
 */
export type Message = typeof Message.Type
