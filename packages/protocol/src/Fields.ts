/**
 * The fields Tether's messages are made of, with their limits: names, text,
 * ids, JSON bodies, and the room and resume fields (room names, epochs,
 * offsets, resume positions). {@link Message} re-exports all of them, so
 * `Message.UserName` and `Fields.UserName` are the same Schema.
 *
 * @since 0.2.0
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
 * How many characters a room name may have after its `#`.
 *
 * @since 0.2.0
 * @category limits
 */
export const maxRoomNameLength = 32

/**
 * Room names: `#` followed by 1 to {@link maxRoomNameLength} of `a-z`, `0-9`,
 * `_`, `-` (e.g. `#lobby`, `#ops-eu_2`).
 *
 * @since 0.2.0
 * @category fields
 */
export const RoomName = Schema.String.pipe(
  Schema.pattern(new RegExp(`^#[a-z0-9_-]{1,${maxRoomNameLength}}$`)),
  Schema.annotations({
    identifier: "RoomName",
    description: `"#" followed by 1 to ${maxRoomNameLength} of a-z, 0-9, _ and -`
  })
)

/**
 * The room every session is in after login unless it resumes others, and
 * the room of a message that names none: so clients that know nothing of
 * rooms keep working unchanged.
 *
 * @since 0.2.0
 * @category fields
 */
export const defaultRoom = "#lobby"

/**
 * How many rooms one session may be in at once (the default room included).
 *
 * @since 0.2.0
 * @category limits
 */
export const maxRoomsPerSession = 32

/**
 * How many positions a {@link Login} may ask to resume: one per room a
 * session may be in.
 *
 * @since 0.2.0
 * @category limits
 */
export const maxResumePositions = maxRoomsPerSession

/**
 * The name of one unbroken history of a room: 1 to 64 of `A-Z`, `a-z`,
 * `0-9`, `_`, `-`. A new epoch means the previous history is gone.
 *
 * @since 0.2.0
 * @category fields
 */
export const Epoch = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/),
  Schema.annotations({ identifier: "Epoch", description: "1 to 64 of A-Z, a-z, 0-9, _ and -" })
)

/**
 * A session's resume secret: issued by the server in a successful
 * `LoginResult`, presented by the same client in its next `Login`, so that
 * login may take over the session when the server still holds its old
 * connection. 16 to 64 of `A-Z a-z 0-9 _ -` (Tether's server issues 43
 * random ones: 258 bits).
 *
 * @since 0.2.0
 * @category fields
 */
export const ResumeSecret = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{16,64}$/),
  Schema.annotations({ identifier: "ResumeSecret", description: "16 to 64 of A-Z, a-z, 0-9, _ and -" })
)

/**
 * A position in a room's history within one epoch: 1, 2, 3, ... for the
 * lines said in it; 0 before the first. Also used for counts of lines.
 *
 * @since 0.2.0
 * @category fields
 */
export const Offset = Schema.Int.pipe(
  Schema.between(0, Number.MAX_SAFE_INTEGER),
  Schema.annotations({ identifier: "Offset" })
)

/**
 * Where a client stands in one room: the last (epoch, offset) it has seen.
 *
 * @since 0.2.0
 * @category fields
 */
export const ResumePosition = Schema.Struct({ room: RoomName, epoch: Epoch, offset: Offset }).pipe(
  Schema.annotations({ identifier: "ResumePosition" })
)

/**
 * @since 0.2.0
 * @category fields
 */
export type ResumePosition = typeof ResumePosition.Type
