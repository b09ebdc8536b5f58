/**
 * The server's security wiring from its flags: the authenticator (hashed
 * users file, signed tokens, or the demo defaults; always throttled) and
 * the TLS options; plus the `users add` and `token mint` subcommands.
 */
import * as Cli from "@tether/node/Cli"
import * as Credentials from "@tether/node/Credentials"
import type * as NodeTether from "@tether/node/NodeTether"
import * as Authenticator from "@tether/runtime/Authenticator"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"

const fail = (code: number) => (error: Credentials.CredentialsError) => Cli.exitWith(code, error.message)

/**
 * The authenticator: with `--users`, passwords checked against its scrypt
 * hashes; with a token secret, signed tokens; with neither, the demo
 * defaults (chat: anyone with a non-empty password; classic: mayee/mayee).
 * Throttled in every case.
 */
export const authenticator = (options: {
  readonly usersFile: string | undefined
  readonly tokenSecretFile: string | undefined
  readonly mode: "chat" | "echo" | "classic"
  readonly loginTimeout: Duration.Duration
}): Effect.Effect<Layer.Layer<Authenticator.Authenticator>, Cli.ExitCode> =>
  Effect.gen(function*() {
    const users = options.usersFile === undefined
      ? undefined
      : yield* Effect.mapError(Credentials.readUsers(options.usersFile), (e) => Cli.exitWith(2, `--users: ${e.message}`))
    const tokenSecret = yield* Effect.mapError(
      Credentials.readSecret(options.tokenSecretFile),
      (e) => Cli.exitWith(2, `token secret: ${e.message}`)
    )
    const base = users !== undefined || tokenSecret !== undefined
      ? Credentials.layer({ users, tokenSecret })
      : options.mode === "classic"
      ? Authenticator.Authenticator.layerUsers({ mayee: "mayee" })
      : Authenticator.Authenticator.layerAnyone
    return Layer.effect(Authenticator.Authenticator, Authenticator.throttled({ maxWait: options.loginTimeout })).pipe(
      Layer.provide(base)
    )
  })

/** The TLS options from `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-client-auth`. */
export const tlsOptions = (flags: {
  readonly cert: string | undefined
  readonly key: string | undefined
  readonly ca: string | undefined
  readonly clientAuth: boolean
}): Effect.Effect<NodeTether.TlsServerOptions | undefined, Cli.ExitCode> =>
  Effect.gen(function*() {
    if (flags.cert === undefined && flags.key === undefined) {
      if (flags.ca !== undefined || flags.clientAuth) {
        return yield* Cli.exitWith(2, "--tls-ca and --tls-client-auth need --tls-cert and --tls-key")
      }
      return undefined
    }
    if (flags.cert === undefined || flags.key === undefined) {
      return yield* Cli.exitWith(2, "--tls-cert and --tls-key go together")
    }
    if (flags.clientAuth && flags.ca === undefined) {
      return yield* Cli.exitWith(2, "--tls-client-auth needs --tls-ca (the CA client certificates must be signed by)")
    }
    const read = (flag: string, file: string) =>
      Effect.try({
        try: () => fs.readFileSync(file),
        catch: (error) => Cli.exitWith(2, `${flag}: cannot read ${file}: ${(error as Error).message}`)
      })
    return {
      cert: yield* read("--tls-cert", flags.cert),
      key: yield* read("--tls-key", flags.key),
      ...(flags.ca !== undefined ? { ca: yield* read("--tls-ca", flags.ca) } : {}),
      requireClientCert: flags.clientAuth
    }
  })

/** `tether-server users add NAME --users FILE`: the password from a file, TETHER_PASSWORD, stdin or a prompt. */
export const addUser = (options: { readonly usersFile: string; readonly name: string; readonly passwordFile: string | undefined }) =>
  Effect.gen(function*() {
    const password = yield* Cli.readSecret({
      file: options.passwordFile,
      env: "TETHER_PASSWORD",
      stdin: true,
      prompt: `password for ${options.name}: `
    })
    if (password === undefined || password.length === 0) {
      return yield* Cli.exitWith(2, "no password: give it in TETHER_PASSWORD, --password-file, on stdin, or at the prompt")
    }
    const user = yield* Effect.mapError(Credentials.addUser(options.usersFile, options.name, password), fail(2))
    yield* Effect.sync(() => process.stdout.write(`added ${user} to ${options.usersFile}\n`))
  })

/** `tether-server token mint NAME`: prints a signed login token for NAME. */
export const mintToken = (options: { readonly name: string; readonly ttl: Duration.Duration; readonly tokenSecretFile: string | undefined }) =>
  Effect.gen(function*() {
    const secret = yield* Effect.mapError(Credentials.readSecret(options.tokenSecretFile), fail(2))
    if (secret === undefined) {
      return yield* Cli.exitWith(2, "no token secret: give --token-secret-file or TETHER_TOKEN_SECRET")
    }
    const token = yield* Credentials.mintToken(secret, options.name.normalize("NFKC"), options.ttl)
    yield* Effect.sync(() => process.stdout.write(`${token}\n`))
  })
