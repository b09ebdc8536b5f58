/**
 * tether-client: the chat client (interactive or scripted) and the classic
 * demo client.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cli from "@tether/node/Cli"
import * as NodeTether from "@tether/node/NodeTether"
import * as Printable from "@tether/protocol/Printable"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as Chat from "./Chat.js"
import * as ClassicClient from "./ClassicClient.js"

const mode = Options.choice("mode", ["chat", "classic"]).pipe(
  Options.withDefault("chat" as const),
  Options.withDescription("chat: Tether's chat protocol; classic: the Go heartbeat demo's binary packets")
)
const host = Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription("server address (see --server for several)"))
const server = Options.text("server").pipe(
  Options.repeated,
  Options.withDescription(
    "chat: a server as HOST:PORT; repeat it for several, tried in turn (a failed server moves the client to the next, with the same backoff); overrides --host / --port"
  )
)
const port = Cli.orUndefined(Options.integer("port").pipe(Options.withDescription("server port (default 7373; 30001 in classic mode)")))
const user = Cli.orUndefined(Options.text("user").pipe(Options.withDescription("user name (chat default: $USER; classic default: mayee)")))
const password = Cli.orUndefined(
  Options.text("password").pipe(Options.withDescription(
    "password on the command line (visible to every local user in the process list: prefer TETHER_PASSWORD, --password-file or the prompt)"
  ))
)
const passwordFile = Cli.orUndefined(
  Options.file("password-file", { exists: "yes" }).pipe(Options.withDescription("read the password from this file's first line"))
)
const tokenFile = Cli.orUndefined(
  Options.file("token-file", { exists: "yes" }).pipe(Options.withDescription("log in with the signed token in this file (or TETHER_TOKEN) instead of a password"))
)
const tls = Options.boolean("tls").pipe(Options.withDescription("connect with TLS (the server's certificate is verified)"))
const tlsCa = Cli.orUndefined(
  Options.file("tls-ca", { exists: "yes" }).pipe(Options.withDescription("CA certificates (PEM) trusted for the server's certificate (default: the system's)"))
)
const tlsCert = Cli.orUndefined(
  Options.file("tls-cert", { exists: "yes" }).pipe(Options.withDescription("client certificate (PEM), for servers started with --tls-client-auth"))
)
const tlsKey = Cli.orUndefined(Options.file("tls-key", { exists: "yes" }).pipe(Options.withDescription("the private key of --tls-cert (PEM)")))
const insecure = Options.boolean("insecure").pipe(
  Options.withDescription("with --tls, accept any server certificate (tests only: anyone in the middle can read the traffic)")
)
const say = Cli.orUndefined(
  Options.text("say").pipe(Options.withDescription("say this line, exit 0 once the server accepted it (scripted mode)"))
)
const heartbeatTimeout = Cli.orUndefined(
  Cli.duration("heartbeat-timeout").pipe(Options.withDescription("give up on a server silent this long (default 17s)"))
)
const connectTimeout = Cli.duration("connect-timeout").pipe(
  Options.withDefault(Duration.seconds(5)),
  Options.withDescription("how long one connection attempt may take")
)
const count = Cli.orUndefined(
  Options.integer("count").pipe(Options.withDescription("classic mode: exit 0 after this many ServerDemo answers"))
)

const tlsFromFlags = (flags: {
  readonly tls: boolean
  readonly tlsCa: string | undefined
  readonly tlsCert: string | undefined
  readonly tlsKey: string | undefined
  readonly insecure: boolean
}): Effect.Effect<NodeTether.TlsConnectOptions | undefined, Cli.ExitCode> =>
  Effect.try({
    try: () => {
      const wanted = flags.tls || flags.tlsCa !== undefined || flags.tlsCert !== undefined || flags.insecure
      if (!wanted) return undefined
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new Error("--tls-cert and --tls-key go together")
      return {
        ...(flags.tlsCa !== undefined ? { ca: fs.readFileSync(flags.tlsCa) } : {}),
        ...(flags.tlsCert !== undefined ? { cert: fs.readFileSync(flags.tlsCert) } : {}),
        ...(flags.tlsKey !== undefined ? { key: fs.readFileSync(flags.tlsKey) } : {}),
        insecure: flags.insecure
      }
    },
    catch: (error) => Cli.exitWith(2, (error as Error).message)
  })

const command = Command.make(
  "tether-client",
  {
    mode,
    server,
    host,
    port,
    user,
    password,
    passwordFile,
    tokenFile,
    tls,
    tlsCa,
    tlsCert,
    tlsKey,
    insecure,
    say,
    heartbeatTimeout,
    connectTimeout,
    count,
    logFormat: Cli.logOptions("warning").format,
    logLevel: Cli.logOptions("warning").level
  },
  (flags) => {
    const program = Effect.gen(function*() {
      const tlsOptions = yield* tlsFromFlags(flags)
      // The password: --password-file, --password (argv), TETHER_PASSWORD, else a prompt in a terminal.
      const secret = (prompt: string | undefined) =>
        flags.password !== undefined && flags.passwordFile === undefined
          ? Effect.succeed<string | undefined>(flags.password)
          : Cli.readSecret({ file: flags.passwordFile, env: "TETHER_PASSWORD", prompt })
      if (flags.mode === "classic") {
        return yield* ClassicClient.run({
          host: flags.host,
          port: flags.port ?? 30001,
          user: flags.user ?? "mayee",
          password: (yield* secret(undefined)) ?? "mayee",
          heartbeatTimeout: flags.heartbeatTimeout,
          demoInterval: Duration.seconds(2),
          connectTimeout: flags.connectTimeout,
          count: flags.count,
          tls: tlsOptions
        })
      }
      const user = Printable.normalizeName(flags.user ?? process.env.USER ?? process.env.USERNAME ?? "")
      if (user.length === 0 || user.length > 32 || Printable.nameProblem(user) !== undefined) {
        return yield* Cli.exitWith(2, "--user: give a user name of 1 to 32 characters, without control or invisible characters")
      }
      const token = yield* Cli.readSecret({ file: flags.tokenFile, env: "TETHER_TOKEN" })
      const interactive = flags.say === undefined && process.stdin.isTTY === true
      const prompted = interactive && flags.password === undefined && flags.passwordFile === undefined &&
        !process.env.TETHER_PASSWORD
      const typed = token !== undefined
        ? undefined
        : yield* secret(prompted ? `password for ${user} (Enter for "tether", which the default server accepts): ` : undefined)
      const credential = token !== undefined
        ? { token }
        : { password: typed === undefined || (prompted && typed === "") ? "tether" : typed }
      const servers: Array<Chat.Address> = []
      for (const text of flags.server) {
        const address = Chat.parseAddress(text)
        if (address === undefined) return yield* Cli.exitWith(2, `--server: give HOST:PORT, not ${JSON.stringify(text.slice(0, 80))}`)
        servers.push(address)
      }
      if (servers.length === 0) servers.push({ host: flags.host, port: flags.port ?? 7373 })
      const options: Chat.ChatOptions = {
        servers,
        user,
        credential,
        tls: tlsOptions,
        heartbeatTimeout: flags.heartbeatTimeout ?? Duration.seconds(17),
        connectTimeout: flags.connectTimeout
      }
      if (flags.say !== undefined) return yield* Chat.scripted(options, Stream.make(flags.say))
      if (!process.stdin.isTTY) return yield* Chat.scripted(options, Chat.stdinLines)
      return yield* Chat.interactive(options)
    })
    return program.pipe(Cli.reportExit, Effect.provide(Cli.layerLogger(flags.logFormat, flags.logLevel)))
  }
).pipe(Command.withDescription(
  "Tether client. Chat: interactive in a terminal, with rooms (/join #name, /leave, /rooms, /who, /help, /quit); or scripted with --say or lines on stdin, where the same commands work (exit 0 once every line is accepted; 3 login refused, 4 could not connect). " +
    "It reconnects by itself (to the next --server when there are several), queues lines typed while disconnected and sends them after the reconnect, " +
    "and resumes each room: missed lines are replayed, or it says they could not be recovered. Classic: the Go heartbeat demo client."
))

const cli = Command.run(command, { name: "tether-client", version: "0.1.0" })

Cli.survivableOutput()
cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
