/**
 * tether-server: reads flags, wires layers, runs one mode until SIGINT /
 * SIGTERM, then drains and prints a one-line summary.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cli from "@tether/node/Cli"
import * as NodeTether from "@tether/node/NodeTether"
import * as Health from "@tether/runtime/Health"
import * as Server from "@tether/runtime/Server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as Lifecycle from "./Lifecycle.js"
import * as Modes from "./Modes.js"

const mode = Options.choice("mode", ["chat", "echo", "classic"]).pipe(
  Options.withDefault("chat" as const),
  Options.withDescription(
    "chat: Tether's chat protocol; echo: frames echoed back (the benchmark contract); classic: the Go heartbeat demo's binary packets"
  )
)
const host = Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription("address to listen on"))
const port = Cli.orUndefined(
  Options.integer("port").pipe(Options.withDescription("port to listen on (default 7373; 30001 in classic mode; 0 picks a free one)"))
)
const httpPort = Cli.orUndefined(
  Options.integer("http-port").pipe(
    Options.withDescription("serve /metrics (Prometheus), /healthz and /dashboard over HTTP on this port, and in chat mode the web chat page (/) and its WebSocket (/ws) (default off; 0 picks a free one)")
  )
)
const heartbeatInterval = Cli.orUndefined(
  Cli.duration("heartbeat-interval").pipe(
    Options.withDescription("how often the server pings each peer (chat default 5s; classic 5s; echo: no pings unless set)")
  )
)
const heartbeatTimeout = Cli.orUndefined(
  Cli.duration("heartbeat-timeout").pipe(
    Options.withDescription("a peer silent this long is closed (chat and classic default 17s; echo default 3 x interval)")
  )
)
const heartbeat = Options.choice("heartbeat", ["ping", "idle", "adaptive", "off"]).pipe(
  Options.withDefault("ping" as const),
  Options.withDescription(
    "chat mode's policy: ping (every interval), idle (no pings, any traffic extends the deadline), adaptive (1s, relaxing to 5s when stable, 0.5s after a miss), off"
  )
)
const loginTimeout = Cli.duration("login-timeout").pipe(
  Options.withDefault(Duration.seconds(10)),
  Options.withDescription("a connection that has not logged in by then is closed (chat, classic)")
)
const maxFrameBytes = Options.integer("max-frame-bytes").pipe(
  Options.withDefault(1024 * 1024),
  Options.withDescription("largest frame accepted; a larger declared length closes the connection (classic: at most 65535)")
)
const maxConnections = Cli.orUndefined(
  Options.integer("max-connections").pipe(Options.withDescription("connections beyond this are refused with a message"))
)
const drainTimeout = Cli.duration("drain-timeout").pipe(
  Options.withDefault(Duration.seconds(10)),
  Options.withDescription("on SIGINT/SIGTERM, how long to let handlers and queues finish before closing the rest")
)
const users = Cli.orUndefined(
  Options.file("users", { exists: "yes" }).pipe(
    Options.withDescription("JSON file of user -> password (default: chat accepts anyone with a non-empty password; classic accepts mayee/mayee)")
  )
)
const framing = Options.choice("framing", ["length", "lines"]).pipe(
  Options.withDefault("length" as const),
  Options.withDescription("echo mode's framing: length (u32 big-endian length + payload) or lines (newline-delimited)")
)

const Users = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.String }))

const readUsers = (file: string | undefined, mode: "chat" | "echo" | "classic") =>
  Effect.gen(function*() {
    if (file === undefined) {
      return mode === "classic" ? Server.Authenticator.layerUsers({ mayee: "mayee" }) : Server.Authenticator.layerAnyone
    }
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (error) => Cli.exitWith(2, `--users: cannot read ${file}: ${String(error)}`)
    })
    const table = yield* Schema.decodeUnknown(Users)(text).pipe(
      Effect.mapError(() => Cli.exitWith(2, `--users: ${file} must hold a JSON object of user name -> password`))
    )
    return Server.Authenticator.layerUsers(table)
  })

const command = Command.make(
  "tether-server",
  {
    mode,
    host,
    port,
    httpPort,
    heartbeat,
    heartbeatInterval,
    heartbeatTimeout,
    loginTimeout,
    maxFrameBytes,
    maxConnections,
    drainTimeout,
    users,
    framing,
    logFormat: Cli.logOptions().format,
    logLevel: Cli.logOptions().level
  },
  (flags) => {
    const listenPort = flags.port ?? (flags.mode === "classic" ? 30001 : 7373)
    const common: Modes.Common = {
      heartbeatInterval: flags.heartbeatInterval,
      heartbeatTimeout: flags.heartbeatTimeout,
      loginTimeout: flags.loginTimeout,
      maxFrameBytes: flags.maxFrameBytes,
      maxConnections: flags.maxConnections,
      drainTimeout: flags.drainTimeout
    }
    let running: Modes.Running | undefined
    const serve = Effect.gen(function*() {
      if (flags.maxFrameBytes < 1) return yield* Cli.exitWith(2, "--max-frame-bytes must be at least 1")
      if (flags.maxConnections !== undefined && flags.maxConnections < 1) {
        return yield* Cli.exitWith(2, "--max-connections must be at least 1")
      }
      if (flags.httpPort !== undefined && (flags.httpPort < 0 || flags.httpPort > 65535)) {
        return yield* Cli.exitWith(2, "--http-port must be 0 to 65535")
      }
      const auth = yield* readUsers(flags.users, flags.mode)
      const start = flags.mode === "chat"
        ? Modes.chat({ ...common, heartbeat: flags.heartbeat })
        : flags.mode === "echo"
        ? Modes.echo({ ...common, framing: flags.framing })
        : Modes.classic(common)
      return yield* Effect.gen(function*() {
        const http = flags.httpPort === undefined ? undefined : Effect.flatMap(
          Effect.promise(() => import("./Http.js")),
          (Http) =>
            Http.start({
              host: flags.host,
              port: flags.httpPort!,
              // Chat mode: the web chat page and /ws, whose sockets join the chat server once it is up.
              webSocket: flags.mode === "chat"
                ? { accept: () => running?.acceptWebSocket, maxPayload: flags.maxFrameBytes }
                : undefined
            }).pipe(
              Effect.mapError((error) =>
                Cli.exitWith(1, `cannot listen on ${flags.host}:${flags.httpPort} (http): ${String((error.cause as Error)?.message ?? error.cause)}`)
              )
            )
        )
        const started = yield* Lifecycle.start(start, http)
        running = started.running
        const web = started.httpUrl === undefined
          ? ""
          : `, ${started.httpUrl}/dashboard (also /metrics, /healthz)${
            flags.mode === "chat" ? `, web chat on ${started.httpUrl}/ (WebSocket ${started.httpUrl.replace("http", "ws")}/ws)` : ""
          }`
        yield* Effect.logInfo(`listening on ${running.address.hostname}:${running.address.port}${web}`).pipe(
          Effect.annotateLogs("mode", flags.mode)
        )
        return yield* Effect.never
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.mergeAll(NodeTether.layerServer({ host: flags.host, port: listenPort }), auth, Health.layer())),
        Effect.catchTag("SocketServerError", (error) =>
          Effect.fail(Cli.exitWith(1, `cannot listen on ${flags.host}:${listenPort}: ${String((error.cause as Error)?.message ?? error.cause)}`)))
      )
    })
    return serve.pipe(
      Effect.onInterrupt(() =>
        running === undefined ? Effect.void : Effect.logInfo(
          `stopped: ${running.stats.closed} sessions closed, ${running.stats.framesOut} messages delivered, ${running.stats.framesIn} received, ${running.stats.refused} refused`
        )
      ),
      Cli.reportExit,
      Effect.provide(Cli.layerLogger(flags.logFormat, flags.logLevel))
    )
  }
).pipe(Command.withDescription("Tether server: chat, echo and classic modes over TCP, with heartbeats and a graceful drain on SIGINT/SIGTERM."))

const cli = Command.run(command, { name: "tether-server", version: "0.1.0" })

cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown }))
