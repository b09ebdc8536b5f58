/**
 * tether-client: the chat client (interactive or scripted) and the classic
 * demo client.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cli from "@tether/node/Cli"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
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
  Options.text("password").pipe(Options.withDescription("password (chat default: \"tether\", which the default server accepts; classic default: mayee)"))
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

const command = Command.make(
  "tether-client",
  {
    mode,
    server,
    host,
    port,
    user,
    password,
    say,
    heartbeatTimeout,
    connectTimeout,
    count,
    logFormat: Cli.logOptions("warning").format,
    logLevel: Cli.logOptions("warning").level
  },
  (flags) => {
    const program = Effect.suspend(() => {
      if (flags.mode === "classic") {
        return ClassicClient.run({
          host: flags.host,
          port: flags.port ?? 30001,
          user: flags.user ?? "mayee",
          password: flags.password ?? "mayee",
          heartbeatTimeout: flags.heartbeatTimeout,
          demoInterval: Duration.seconds(2),
          connectTimeout: flags.connectTimeout,
          count: flags.count
        })
      }
      const user = flags.user ?? process.env.USER ?? process.env.USERNAME
      if (user === undefined || user.length === 0 || user.length > 32) {
        return Effect.fail(Cli.exitWith(2, "--user: give a user name of 1 to 32 characters"))
      }
      const servers: Array<Chat.Address> = []
      for (const text of flags.server) {
        const address = Chat.parseAddress(text)
        if (address === undefined) return Effect.fail(Cli.exitWith(2, `--server: give HOST:PORT, not ${JSON.stringify(text)}`))
        servers.push(address)
      }
      if (servers.length === 0) servers.push({ host: flags.host, port: flags.port ?? 7373 })
      const options: Chat.ChatOptions = {
        servers,
        user,
        password: flags.password ?? "tether",
        heartbeatTimeout: flags.heartbeatTimeout ?? Duration.seconds(17),
        connectTimeout: flags.connectTimeout
      }
      if (flags.say !== undefined) return Chat.scripted(options, Stream.make(flags.say))
      if (!process.stdin.isTTY) return Chat.scripted(options, Chat.stdinLines)
      return Chat.interactive(options)
    })
    return program.pipe(Cli.reportExit, Effect.provide(Cli.layerLogger(flags.logFormat, flags.logLevel)))
  }
).pipe(Command.withDescription(
  "Tether client. Chat: interactive in a terminal, with rooms (/join #name, /leave, /rooms, /who, /help, /quit); or scripted with --say or lines on stdin (exit 0 once every line is accepted; 3 login refused, 4 could not connect). " +
    "It reconnects by itself (to the next --server when there are several), queues lines typed while disconnected and sends them after the reconnect, " +
    "and resumes each room: missed lines are replayed, or it says they could not be recovered. Classic: the Go heartbeat demo client."
))

const cli = Command.run(command, { name: "tether-client", version: "0.1.0" })

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
