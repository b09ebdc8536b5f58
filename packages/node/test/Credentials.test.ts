import { assert, describe, it } from "@effect/vitest"
import * as Credentials from "@tether/node/Credentials"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const secret = new TextEncoder().encode("0123456789abcdef0123456789abcdef")
const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tether-cred-")), "users.json")

describe("Credentials: password hashes", () => {
  it.effect("a hash is salted scrypt and verifies only its own password", () =>
    Effect.gen(function*() {
      const a = yield* Credentials.hashPassword("correct horse")
      const b = yield* Credentials.hashPassword("correct horse")
      assert.match(a, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/)
      assert.notStrictEqual(a, b, "salted: the same password hashes differently")
      assert.notInclude(a, "correct")
      assert.isTrue(yield* Credentials.verifyPassword(a, "correct horse"))
      assert.isFalse(yield* Credentials.verifyPassword(a, "correct horsE"))
      assert.isFalse(yield* Credentials.verifyPassword("plaintext", "plaintext"))
      assert.isFalse(yield* Credentials.verifyPassword("scrypt$1048577$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "x"), "absurd cost refused")
    }))

  it.effect("users add writes hashes (mode 0600); __proto__ is a user like any other; plaintext files say how to migrate", () =>
    Effect.gen(function*() {
      const file = tempFile()
      assert.strictEqual(yield* Credentials.addUser(file, "alice", "pw-a"), "alice")
      assert.strictEqual(yield* Credentials.addUser(file, "__proto__", "pw-p"), "__proto__")
      // stored NFKC-normalised
      assert.strictEqual(yield* Credentials.addUser(file, "ｂｏｂ", "pw-b"), "bob")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.notInclude(fs.readFileSync(file, "utf8"), "pw-")
      const auth = Credentials.make({ users: yield* Credentials.readUsers(file) })
      const attempt = (user: string, password: string) => auth.authenticate({ user, password, remote: "127.0.0.1:1" })
      assert.isTrue(yield* attempt("alice", "pw-a"))
      assert.isTrue(yield* attempt("__proto__", "pw-p"))
      assert.isTrue(yield* attempt("bob", "pw-b"))
      assert.isFalse(yield* attempt("alice", "pw-p"))
      assert.isFalse(yield* attempt("nobody", "pw-a"))
      assert.isFalse(yield* auth.authenticate({ user: "alice", remote: "127.0.0.1:1" }))

      const bad = yield* Effect.flip(Credentials.addUser(file, "bob\u200b", "x"))
      assert.include(bad.message, "not a valid user name")

      fs.writeFileSync(file, JSON.stringify({ carol: "secret" }))
      const old = yield* Effect.flip(Credentials.readUsers(file))
      assert.include(old.message, "not a scrypt hash")
      assert.include(old.message, "tether-server users add")
    }))
})

describe("Credentials: tokens", () => {
  it.effect("a token logs in its user until it expires (Clock time); tampered or foreign tokens do not", () =>
    Effect.gen(function*() {
      const token = yield* Credentials.mintToken(secret, "alice", "1 hour")
      const auth = Credentials.make({ tokenSecret: secret })
      const attempt = (user: string, t: string) => auth.authenticate({ user, token: t, remote: "127.0.0.1:1" })
      assert.isTrue(yield* attempt("alice", token))
      assert.isFalse(yield* attempt("bob", token), "bound to its user")
      const [prefix, payload, signature] = token.split(".")
      const forged = Buffer.from(JSON.stringify({ sub: "bob", exp: 9e15 })).toString("base64url")
      assert.isFalse(yield* attempt("bob", `${prefix}.${forged}.${signature}`), "payload changed")
      assert.isFalse(yield* attempt("alice", `${prefix}.${payload}.${signature!.slice(0, -2)}AA`), "signature changed")
      const other = yield* Credentials.mintToken(new TextEncoder().encode("x".repeat(32)), "alice", "1 hour")
      assert.isFalse(yield* attempt("alice", other), "another secret")
      assert.isFalse(yield* attempt("alice", "garbage"))
      // a password is not accepted by a tokens-only authenticator
      assert.isFalse(yield* auth.authenticate({ user: "alice", password: token, remote: "127.0.0.1:1" }))
      yield* TestClock.adjust("59 minutes")
      assert.isTrue(yield* attempt("alice", token))
      yield* TestClock.adjust("1 minute")
      assert.isFalse(yield* attempt("alice", token), "expired")
    }))

  it.effect("secrets come from a file or the environment and must be 32 bytes", () =>
    Effect.gen(function*() {
      const file = tempFile()
      fs.writeFileSync(file, "short\n")
      assert.include((yield* Effect.flip(Credentials.readSecret(file))).message, "at least 32 bytes")
      fs.writeFileSync(file, "0123456789abcdef0123456789abcdef\n")
      assert.deepStrictEqual(yield* Credentials.readSecret(file), secret)
      assert.isUndefined(yield* Credentials.readSecret(undefined, "TETHER_TEST_NO_SUCH_VARIABLE"))
    }))
})
