/**
 * Tether's own protocol: every message is a Schema tagged struct, and
 * {@link Message} is their union. Field limits live in the Schemas, so a
 * message that decodes is a message a handler can trust.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Printable from "./Printable.js"

/**
 * User names: 1 to 32 characters, in NFKC form, without control, bidi,
 * separator or invisible characters (see `Printable.nameProblem`).
 *
 * @since 0.1.0
 * @category fields
 */
export const UserName = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(32),
  Schema.filter((name) => Printable.nameProblem(name)),
  Schema.annotations({ identifier: "UserName" })
)

/**
 * Passwords: 1 to 128 characters.
 *
 * @since 0.1.0
 * @category fields
 */
export const Password = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.annotations({ identifier: "Password" })
)

/**
 * Chat text: up to 16 KiB (16,384 UTF-16 code units).
 *
 * @since 0.1.0
 * @category fields
 */
export const Text = Schema.String.pipe(Schema.maxLength(16 * 1024), Schema.annotations({ identifier: "Text" }))

/**
 * Short human-readable reasons: up to 256 characters.
 *
 * @since 0.1.0
 * @category fields
 */
export const Reason = Schema.String.pipe(Schema.maxLength(256), Schema.annotations({ identifier: "Reason" }))

/**
 * Correlation ids and sequence numbers: unsigned 32-bit integers.
 *
 * @since 0.1.0
 * @category fields
 */
export const U32: Schema.Schema<number> = Schema.declare(
  (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0 && u <= 0xffff_ffff,
  {
    identifier: "U32",
    description: "an unsigned 32-bit integer",
    arbitrary: () => (fc) => fc.integer({ min: 0, max: 0xffff_ffff }),
    jsonSchema: { type: "integer", minimum: 0, maximum: 0xffff_ffff }
  }
)

/**
 * Unix time in milliseconds.
 *
 * @since 0.1.0
 * @category fields
 */
export const Millis = Schema.Int.pipe(
  Schema.between(0, Number.MAX_SAFE_INTEGER),
  Schema.annotations({ identifier: "Millis" })
)

/**
 * A JSON value: what request and response bodies may carry (finite numbers,
 * strings, booleans, null, arrays and plain objects of those), nested at
 * most {@link maxJsonDepth} deep.
 *
 * @since 0.1.0
 * @category fields
 */
export type Json = string | number | boolean | null | ReadonlyArray<Json> | { readonly [key: string]: Json }

/**
 * How deep a {@link Json} value may nest. A hostile body of 100,000 nested
 * arrays parses fine but would overflow the stack of any recursive check.
 *
 * @since 0.1.0
 * @category fields
 */
export const maxJsonDepth = 64

const isJson = (u: unknown, depth: number): u is Json => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(u)
    case "object": {
      if (u === null) return true
      if (depth >= maxJsonDepth) return false
      if (Array.isArray(u)) {
        for (let i = 0; i < u.length; i++) if (!isJson(u[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(u)
      if (proto !== Object.prototype && proto !== null) return false
      for (const key in u) {
        if (!isJson((u as Record<string, unknown>)[key], depth + 1)) return false
      }
      return true
    }
    default:
      return false
  }
}

/**
 * One declared predicate rather than a recursive `Schema.Union`: the same
 * values pass (plus the depth limit, and only plain objects), at a fraction
 * of the cost on every request and response, and no stack overflow on
 * hostile nesting.
 *
 * @since 0.1.0
 * @category fields
 */
export const Json: Schema.Schema<Json> = Schema.declare((u: unknown): u is Json => isJson(u, 0), {
  identifier: "Json",
  description: `a JSON value nested at most ${maxJsonDepth} deep`,
  // Not the value itself: a body can be 16 KiB, or nested too deep to print.
  message: () => `Expected a JSON value (finite numbers, strings, booleans, null, arrays, plain objects) nested at most ${maxJsonDepth} deep`,
  // JSON cannot carry -0 or a "__proto__" key faithfully: keep them out of
  // generated bodies so round-trip properties test what the wire can say.
  arbitrary: () => (fc) => fc.jsonValue({ maxDepth: 3, noUnicodeString: false }).filter(noUnfaithfulJson) as any,
  jsonSchema: {}
})

const noUnfaithfulJson = (value: unknown): boolean => {
  if (typeof value === "number") return !Object.is(value, -0)
  if (Array.isArray(value)) return value.every(noUnfaithfulJson)
  if (value !== null && typeof value === "object") {
    return Object.keys(value).every((key) => key !== "__proto__") &&
      Object.values(value).every(noUnfaithfulJson)
  }
  return true
}

/**
 * Login status codes, shared with the classic protocol: 0 session active,
 * 5 invalid credentials (or the first message was not a login), 100 user
 * already connected.
 *
 * @since 0.1.0
 * @category fields
 */
export const LoginStatus = Schema.Literal(0, 5, 100)

/**
 * @since 0.1.0
 * @category fields
 */
export type LoginStatus = typeof LoginStatus.Type

/**
 * The first message of a session: a user name with a password or a signed
 * login token (a server's authenticator decides which it accepts).
 *
 * @since 0.1.0
 * @category messages
 */
export const Login = Schema.TaggedStruct("Login", {
  user: UserName,
  password: Schema.optionalWith(Password, { exact: true }),
  /** A signed login token instead of a password (1 to 2048 characters). */
  token: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2048)), { exact: true })
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Login = typeof Login.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const LoginResult = Schema.TaggedStruct("LoginResult", {
  status: LoginStatus,
  reason: Schema.optionalWith(Reason, { exact: true })
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
 * A chat line from a client; the server answers {@link Ack} with the same
 * `id` once it has accepted it.
 *
 * @since 0.1.0
 * @category messages
 */
export const Say = Schema.TaggedStruct("Say", { id: U32, text: Text })
/**
 * @since 0.1.0
 * @category messages
 */
export type Say = typeof Say.Type

/**
 * The server has accepted the {@link Say} with this `id`.
 *
 * @since 0.1.0
 * @category messages
 */
export const Ack = Schema.TaggedStruct("Ack", { id: U32 })
/**
 * @since 0.1.0
 * @category messages
 */
export type Ack = typeof Ack.Type

/**
 * A chat line delivered to the other sessions.
 *
 * @since 0.1.0
 * @category messages
 */
export const Said = Schema.TaggedStruct("Said", { from: UserName, text: Text, at: Millis, seq: U32 })
/**
 * @since 0.1.0
 * @category messages
 */
export type Said = typeof Said.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Joined = Schema.TaggedStruct("Joined", { user: UserName })
/**
 * @since 0.1.0
 * @category messages
 */
export type Joined = typeof Joined.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Left = Schema.TaggedStruct("Left", { user: UserName, reason: Reason })
/**
 * @since 0.1.0
 * @category messages
 */
export type Left = typeof Left.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Who = Schema.TaggedStruct("Who", {})
/**
 * @since 0.1.0
 * @category messages
 */
export type Who = typeof Who.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Present = Schema.TaggedStruct("Present", {
  users: Schema.Array(UserName).pipe(Schema.maxItems(100_000))
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
  Failure
)

/**
 * @since 0.1.0
 * @category messages
 */
export type Message = typeof Message.Type
