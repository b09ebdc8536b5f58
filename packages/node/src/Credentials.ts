/**
 * Credentials that are never stored in clear: a users file of salted scrypt
 * hashes (checked in constant time), and signed login tokens (HMAC-SHA256,
 * expiring) so an application can log its users in without a password on
 * the wire. Both make a `@tether/runtime` {@link Authenticator.Authenticator}.
 *
 * Users file: a JSON object of user name -> `scrypt$N$r$p$salt$hash`
 * (base64url salt and hash). Tokens: `tether1.<payload>.<signature>`, the
 * payload base64url JSON `{ "sub": user, "exp": unix ms }`.
 *
 * @since 0.1.0
 */
import * as Authenticator from "@tether/runtime/Authenticator"
import * as Message from "@tether/protocol/Message"
import * as Printable from "@tether/protocol/Printable"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"

/**
 * A users file, a token or a secret that cannot be used.
 *
 * @since 0.1.0
 * @category errors
 */
export class CredentialsError extends Data.TaggedError("CredentialsError")<{ readonly message: string }> {}

/**
 * scrypt cost parameters: N = 2^14, r = 8, p = 1 (16 MiB, ~40 ms per hash),
 * a 16-byte salt and a 32-byte key.
 *
 * @since 0.1.0
 * @category hashing
 */
export const defaultScrypt = { N: 16384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

const scrypt = (password: string, salt: Uint8Array, keyBytes: number, cost: { N: number; r: number; p: number }) =>
  Effect.async<Buffer, CredentialsError>((resume) => {
    Crypto.scrypt(password.normalize("NFKC"), salt, keyBytes, { ...cost, maxmem: 128 * cost.N * cost.r * 2 }, (error, key) =>
      resume(error ? Effect.fail(new CredentialsError({ message: `scrypt: ${error.message}` })) : Effect.succeed(key)))
  })

/**
 * Hashes a password with a fresh random salt (on Node's thread pool, not the
 * event loop): the string to store in a users file.
 *
 * @since 0.1.0
 * @category hashing
 */
export const hashPassword = (password: string): Effect.Effect<string, CredentialsError> => {
  const { N, r, p, saltBytes, keyBytes } = defaultScrypt
  const salt = Crypto.randomBytes(saltBytes)
  return Effect.map(scrypt(password, salt, keyBytes, { N, r, p }), (key) => `scrypt$${N}$${r}$${p}$${b64(salt)}$${b64(key)}`)
}

interface Hash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly key: Buffer
}

const parseHash = (text: string): Hash | undefined => {
  const parts = text.split("$")
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  // Bounded: a users file must not make a login cost a gigabyte.
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0) return undefined
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined
  const salt = Buffer.from(parts[4]!, "base64url")
  const key = Buffer.from(parts[5]!, "base64url")
  if (salt.length < 8 || key.length < 16 || key.length > 64) return undefined
  return { N, r, p, salt, key }
}

/**
 * Checks `password` against a stored hash in constant time
 * (`crypto.timingSafeEqual`). A malformed hash never matches.
 *
 * @since 0.1.0
 * @category hashing
 */
export const verifyPassword = (stored: string, password: string): Effect.Effect<boolean> => {
  const hash = parseHash(stored)
  if (hash === undefined) return Effect.succeed(false)
  return scrypt(password, hash.salt, hash.key.length, hash).pipe(
    Effect.map((key) => Crypto.timingSafeEqual(key, hash.key)),
    Effect.orElseSucceed(() => false)
  )
}

/**
 * A users table: user name -> scrypt hash. A `Map`, so any name works
 * (`__proto__` included).
 *
 * @since 0.1.0
 * @category users file
 */
export type Users = ReadonlyMap<string, string>

const UsersJson = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.String }))
const decodeUserName = Schema.decodeUnknownEither(Message.UserName)

/**
 * Parses a users file's text. Entries that are not scrypt hashes (the old
 * plaintext format) are an error that says how to migrate.
 *
 * @since 0.1.0
 * @category users file
 */
export const parseUsers = (text: string, file = "the users file"): Effect.Effect<Users, CredentialsError> =>
  Effect.gen(function*() {
    // Not through Schema.Record's output: its object would turn a "__proto__" key into a prototype.
    yield* Schema.decodeUnknown(UsersJson)(text).pipe(
      Effect.mapError(() => new CredentialsError({ message: `${file} must hold a JSON object of user name -> scrypt hash` }))
    )
    const users = new Map<string, string>(Object.entries(JSON.parse(text) as Record<string, string>))
    for (const [user, hash] of users) {
      if (parseHash(hash) === undefined) {
        return yield* new CredentialsError({
          message: `${file}: the entry for ${JSON.stringify(Printable.forLog(user, 64))} is not a scrypt hash. ` +
            `Plaintext passwords are no longer read: add each user again with ` +
            `\`tether-server users add --users ${file} NAME\` (the password is read from TETHER_PASSWORD, stdin or a prompt)`
        })
      }
    }
    return users
  })

/**
 * Reads a users file ({@link parseUsers}); a missing file is an empty table
 * only when `missingIsEmpty` (adding the first user).
 *
 * @since 0.1.0
 * @category users file
 */
export const readUsers = (file: string, missingIsEmpty = false): Effect.Effect<Users, CredentialsError> =>
  Effect.suspend(() => {
    let text: string
    try {
      text = fs.readFileSync(file, "utf8")
    } catch (error) {
      if (missingIsEmpty && (error as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(new Map())
      return Effect.fail(new CredentialsError({ message: `cannot read ${file}: ${(error as Error).message}` }))
    }
    return parseUsers(text, file)
  })

/**
 * Adds (or replaces) a user in a users file, creating it if needed: the
 * name is NFKC-normalised and must be a valid user name; the password is
 * hashed; the file is written whole (mode 0600) and renamed into place.
 * Returns the name as stored.
 *
 * @since 0.1.0
 * @category users file
 */
export const addUser = (file: string, name: string, password: string): Effect.Effect<string, CredentialsError> =>
  Effect.gen(function*() {
    const user = Printable.normalizeName(name)
    if (decodeUserName(user)._tag === "Left") {
      return yield* new CredentialsError({
        message: `${JSON.stringify(Printable.forLog(name, 64))} is not a valid user name: 1 to 32 characters, no control, bidi or invisible characters`
      })
    }
    if (password.length === 0 || password.length > 128) {
      return yield* new CredentialsError({ message: "the password must be 1 to 128 characters" })
    }
    const users = new Map(yield* readUsers(file, true))
    users.set(user, yield* hashPassword(password))
    const json = `{\n${Array.from(users, ([u, h]) => `  ${JSON.stringify(u)}: ${JSON.stringify(h)}`).join(",\n")}\n}\n`
    yield* Effect.try({
      try: () => {
        const temp = `${file}.${process.pid}.tmp`
        fs.writeFileSync(temp, json, { mode: 0o600 })
        fs.renameSync(temp, file)
      },
      catch: (error) => new CredentialsError({ message: `cannot write ${file}: ${(error as Error).message}` })
    })
    return user
  })

/**
 * The shortest token secret accepted: 32 bytes.
 *
 * @since 0.1.0
 * @category tokens
 */
export const minSecretBytes = 32

/**
 * Reads a token secret from a file (its content, trailing new lines
 * trimmed) or, without a file, from an environment variable. Never from argv.
 *
 * @since 0.1.0
 * @category tokens
 */
export const readSecret = (
  file: string | undefined,
  env: string = "TETHER_TOKEN_SECRET"
): Effect.Effect<Uint8Array | undefined, CredentialsError> =>
  Effect.suspend(() => {
    let text: string | undefined
    if (file !== undefined) {
      try {
        text = fs.readFileSync(file, "utf8").replace(/[\r\n]+$/, "")
      } catch (error) {
        return Effect.fail(new CredentialsError({ message: `cannot read ${file}: ${(error as Error).message}` }))
      }
    } else {
      text = process.env[env]
      if (text === undefined || text.length === 0) return Effect.succeed(undefined)
    }
    const secret = Buffer.from(text, "utf8")
    return secret.length < minSecretBytes
      ? Effect.fail(new CredentialsError({ message: `the token secret must be at least ${minSecretBytes} bytes (e.g. \`openssl rand -hex 32\`)` }))
      : Effect.succeed(new Uint8Array(secret))
  })

const tokenPrefix = "tether1"
const sign = (secret: Uint8Array, signed: string) => Crypto.createHmac("sha256", secret).update(signed).digest()

/**
 * Mints a login token for `user`, valid for `ttl` from now (Clock time).
 *
 * @since 0.1.0
 * @category tokens
 */
export const mintToken = (secret: Uint8Array, user: string, ttl: Duration.DurationInput): Effect.Effect<string> =>
  Effect.map(Effect.clock, (clock) => {
    const payload = b64(Buffer.from(JSON.stringify({ sub: user, exp: clock.unsafeCurrentTimeMillis() + Duration.toMillis(ttl) })))
    const signed = `${tokenPrefix}.${payload}`
    return `${signed}.${b64(sign(secret, signed))}`
  })

/**
 * Whether `token` is a token signed with `secret` for `user` and not yet
 * expired (Clock time). The signature is compared in constant time.
 *
 * @since 0.1.0
 * @category tokens
 */
export const verifyToken = (secret: Uint8Array, token: string, user: string): Effect.Effect<boolean> =>
  Effect.map(Effect.clock, (clock) => {
    const parts = token.split(".")
    if (parts.length !== 3 || parts[0] !== tokenPrefix) return false
    const expected = sign(secret, `${parts[0]}.${parts[1]}`)
    const given = Buffer.from(parts[2]!, "base64url")
    if (given.length !== expected.length || !Crypto.timingSafeEqual(given, expected)) return false
    let claims: unknown
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))
    } catch {
      return false
    }
    const { exp, sub } = (claims ?? {}) as { readonly sub?: unknown; readonly exp?: unknown }
    return sub === user && typeof exp === "number" && clock.unsafeCurrentTimeMillis() < exp
  })

/**
 * @since 0.1.0
 * @category authenticators
 */
export interface AuthenticatorOptions {
  /** Users and their scrypt hashes: logins with a password are checked against them. */
  readonly users?: Users | undefined
  /** A token secret: logins with a token signed with it are accepted. */
  readonly tokenSecret?: Uint8Array | undefined
}

// Checked for unknown users so that a wrong name costs what a wrong password costs.
const dummyHash = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/**
 * An authenticator over hashed users and / or signed tokens: a login with a
 * token is checked against the secret (if any), one with a password against
 * the users (if any); anything else is refused.
 *
 * @since 0.1.0
 * @category authenticators
 */
export const make = (options: AuthenticatorOptions): Authenticator.Authenticator["Type"] => ({
  authenticate: (attempt) => {
    if (attempt.token !== undefined) {
      return options.tokenSecret === undefined
        ? Effect.succeed(false)
        : verifyToken(options.tokenSecret, attempt.token, attempt.user)
    }
    if (attempt.password === undefined || options.users === undefined) return Effect.succeed(false)
    const stored = options.users.get(attempt.user)
    return stored === undefined
      ? Effect.as(verifyPassword(dummyHash, attempt.password), false)
      : verifyPassword(stored, attempt.password)
  }
})

/**
 * {@link make} as a layer.
 *
 * @since 0.1.0
 * @category authenticators
 */
export const layer = (options: AuthenticatorOptions): Layer.Layer<Authenticator.Authenticator> =>
  Layer.succeed(Authenticator.Authenticator, make(options))
