/**
 * tether-server: reads flags, wires layers, runs one mode until SIGINT /
 * SIGTERM, then drains and prints a one-line summary. What a mode or flag
 * needs is imported when it is given (the mode's code, the HTTP side,
 * Redis): the process holds only what it serves with.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cli from "@tether/node/Cli"
import * as Descriptors from "@tether/node/Descriptors"
import * as NodeTether from "@tether/node/NodeTether"
import * as Health from "@tether/runtime/Health"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cluster from "./Cluster.js"
import * as Lifecycle from "./Lifecycle.js"
import * as Modes from "./Modes.js"
import * as Security from "./Security.js"

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
const maxPending = Cli.orUndefined(
  Options.integer("max-pending").pipe(Options.withDescription(
    "connections not logged in yet, at most (default: half of --max-connections when that is given, else unlimited): peers that never log in cannot take every slot"
  ))
)
const historySize = Options.integer("history-size").pipe(
  Options.withDefault(1000),
  Options.withDescription("chat: lines kept per room for replay after a reconnect (also bounded to 4 MiB per room)")
)
const historyAge = Cli.duration("history-age").pipe(
  Options.withDefault(Duration.minutes(10)),
  Options.withDescription("chat: how long a line is kept for replay")
)
const maxLoginBytes = Options.integer("max-login-bytes").pipe(
  Options.withDefault(64 * 1024),
  Options.withDescription("bytes a connection may send before its login succeeds (chat, classic): an unauthenticated peer cannot make the server buffer more")
)
const maxPendingPerAddress = Options.integer("max-pending-per-address").pipe(
  Options.withDefault(256),
  Options.withDescription("connections not logged in yet from one address, at most")
)
const rateMessages = Options.integer("rate-messages").pipe(
  Options.withDefault(50),
  Options.withDescription("chat: messages per second one session may send (bursts of twice that); a Who counts as 10; over it a Say gets SayRefused RateLimited")
)
const rateBytes = Options.integer("rate-bytes").pipe(
  Options.withDefault(1024 * 1024),
  Options.withDescription("chat: bytes per second of input one session may send (bursts of twice that)")
)
const maxConnections = Cli.orUndefined(
  Options.integer("max-connections").pipe(Options.withDescription("connections beyond this are refused with a message"))
)
const driver = Options.choice("driver", ["callback", "fiber"]).pipe(
  Options.withDefault("callback" as const),
  Options.withDescription(
    "how sessions run: callback (socket callbacks and one shared heartbeat timer: no fiber per idle session) or fiber (a reader, a writer and a heartbeat fiber per session, joined fail-fast)"
  )
)
const drainTimeout = Cli.duration("drain-timeout").pipe(
  Options.withDefault(Duration.seconds(10)),
  Options.withDescription("on SIGINT/SIGTERM, how long to let handlers and queues finish before closing the rest")
)
const users = Cli.orUndefined(
  Options.file("users", { exists: "yes" }).pipe(
    Options.withDescription(
      "JSON file of user -> scrypt hash, made with `tether-server users add` (default: chat accepts anyone with a non-empty password; classic accepts mayee/mayee)"
    )
  )
)
const tokenSecretFile = Cli.orUndefined(
  Options.file("token-secret-file", { exists: "yes" }).pipe(
    Options.withDescription("file holding the secret (32 bytes or more) login tokens are signed with (or TETHER_TOKEN_SECRET); logins may then give a token instead of a password")
  )
)
const tlsCert = Cli.orUndefined(
  Options.file("tls-cert", { exists: "yes" }).pipe(Options.withDescription("serve TLS with this certificate chain (PEM); needs --tls-key"))
)
const tlsKey = Cli.orUndefined(
  Options.file("tls-key", { exists: "yes" }).pipe(Options.withDescription("the private key of --tls-cert (PEM)"))
)
const tlsCa = Cli.orUndefined(
  Options.file("tls-ca", { exists: "yes" }).pipe(Options.withDescription("CA certificates (PEM) trusted for client certificates"))
)
const tlsClientAuth = Options.boolean("tls-client-auth").pipe(
  Options.withDescription("require a client certificate signed by --tls-ca")
)
const redis = Cli.orUndefined(
  Options.text("redis").pipe(
    Options.withDescription(
      "cluster mode (chat): rooms, history and presence in this Redis (redis://[user:password@]HOST:PORT[/db]), shared by every tether-server given the same one; default: all in this process"
    )
  )
)
const nodeId = Cli.orUndefined(
  Options.text("node-id").pipe(
    Options.withDescription("this server's id in the cluster (letters, digits, . _ : -; at most 64); default hostname-pid-random")
  )
)
const redisPrefix = Options.text("redis-prefix").pipe(
  Options.withDefault("tether:"),
  Options.withDescription("prefix of every Redis key of the cluster (two clusters may share one Redis); letters, digits and . _ : / -, no braces")
)
const framing = Options.choice("framing", ["length", "lines"]).pipe(
  Options.withDefault("length" as const),
  Options.withDescription("echo mode's framing: length (u32 big-endian length + payload) or lines (newline-delimited)")
)

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
    maxPending,
    maxPendingPerAddress,
    maxLoginBytes,
    historySize,
    historyAge,
    rateMessages,
    rateBytes,
    drainTimeout,
    driver,
    users,
    tokenSecretFile,
    tlsCert,
    tlsKey,
    tlsCa,
    tlsClientAuth,
    redis,
    nodeId,
    redisPrefix,
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
      maxPending: flags.maxPending ??
        (flags.maxConnections !== undefined ? Math.max(1, Math.ceil(flags.maxConnections / 2)) : undefined),
      maxPendingPerAddress: flags.maxPendingPerAddress,
      maxLoginBytes: flags.maxLoginBytes,
      historySize: flags.historySize,
      historyAge: flags.historyAge,
      rateLimit: { messagesPerSecond: flags.rateMessages, burst: flags.rateMessages * 2, bytesPerSecond: flags.rateBytes },
      drainTimeout: flags.drainTimeout,
      driver: flags.driver
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
      if (flags.redis !== undefined && flags.mode !== "chat") return yield* Cli.exitWith(2, "--redis applies to chat mode only")
      if (flags.nodeId !== undefined && !Cluster.nodeIdPattern.test(flags.nodeId)) {
        return yield* Cli.exitWith(2, "--node-id: 1 to 64 letters, digits or . _ : -")
      }
      if (!Cluster.redisPrefixPattern.test(flags.redisPrefix)) {
        return yield* Cli.exitWith(2, "--redis-prefix: up to 100 letters, digits or . _ : / - (no braces: a room's keys use {room} as their Redis Cluster hash tag)")
      }
      const node = flags.nodeId ?? Cluster.defaultNodeId()
      const auth = yield* Security.authenticator({
        usersFile: flags.users,
        tokenSecretFile: flags.tokenSecretFile,
        mode: flags.mode,
        loginTimeout: flags.loginTimeout
      })
      const tls = yield* Security.tlsOptions({ cert: flags.tlsCert, key: flags.tlsKey, ca: flags.tlsCa, clientAuth: flags.tlsClientAuth })
      const start = flags.mode === "chat"
        ? Modes.chat({ ...common, heartbeat: flags.heartbeat, nodeId: node })
        : flags.mode === "echo"
        ? Modes.echo({ ...common, framing: flags.framing })
        : Modes.classic(common)
      return yield* Effect.gen(function*() {
        const nodes = yield* Cluster.dashboardNodes
        const http = flags.httpPort === undefined ? undefined : Effect.flatMap(
          Effect.promise(() => import("./Http.js")),
          (Http) =>
            Http.start({
              host: flags.host,
              port: flags.httpPort!,
              sampler: { rooms: (limit) => running?.roomActivity?.(limit), ...(nodes !== undefined ? { nodes } : {}) },
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
        yield* Cluster.publishSummary(running)
        // Node drops connections silently when out of descriptors: say so in the log.
        yield* Descriptors.watch()
        const web = started.httpUrl === undefined
          ? ""
          : `, ${started.httpUrl}/dashboard (also /metrics, /healthz)${
            flags.mode === "chat" ? `, web chat on ${started.httpUrl}/ (WebSocket ${started.httpUrl.replace("http", "ws")}/ws)` : ""
          }`
        // Whatever --log-level: a script that asked for --port 0 learns the port here.
        yield* Cli.logAlways(`listening on ${running.address.hostname}:${running.address.port}${web}`).pipe(
          Effect.annotateLogs(flags.redis === undefined ? {} : { node, redis: Cluster.redact(flags.redis) }),
          Effect.annotateLogs({ mode: flags.mode, tls: tls === undefined ? "off" : tls.requireClientCert ? "client-auth" : "on" })
        )
        return yield* Effect.never
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.mergeAll(
          NodeTether.layerServer({ host: flags.host, port: listenPort, tls }),
          auth,
          flags.redis === undefined
            ? Health.layer()
            : Cluster.layer({ url: flags.redis, nodeId: node, prefix: flags.redisPrefix }).pipe(Layer.provideMerge(Health.layer()))
        )),
        Effect.catchTag("RedisError", (error) =>
          Effect.fail(Cli.exitWith(
            3,
            error.reason === "Unsupported"
              ? `Redis at ${Cluster.redact(flags.redis ?? "")} cannot serve this cluster: ${(error.cause as Error).message}`
              : `cannot reach Redis at ${Cluster.redact(flags.redis ?? "")}: ${error.message}`
          ))),
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

const passwordFile = Cli.orUndefined(
  Options.file("password-file", { exists: "yes" }).pipe(Options.withDescription("read the password from this file's first line"))
)
const usersAdd = Command.make(
  "add",
  {
    name: Args.text({ name: "NAME" }),
    usersFile: Options.file("users").pipe(Options.withDescription("the users file (created if missing, written with mode 0600)")),
    passwordFile
  },
  (flags) => Security.addUser(flags).pipe(Cli.reportExit)
).pipe(Command.withDescription(
  "Add a user (or change its password) in a users file. The password comes from --password-file, TETHER_PASSWORD, stdin, or a prompt: never from argv."
))
const tokenMint = Command.make(
  "mint",
  {
    name: Args.text({ name: "NAME" }),
    ttl: Cli.duration("ttl").pipe(Options.withDefault(Duration.hours(1)), Options.withDescription("how long the token is valid (default 1h)")),
    tokenSecretFile
  },
  (flags) => Security.mintToken(flags).pipe(Cli.reportExit)
).pipe(Command.withDescription("Print a login token for NAME signed with the token secret (--token-secret-file or TETHER_TOKEN_SECRET)."))

const root = command.pipe(
  Command.withSubcommands([
    Command.make("users").pipe(Command.withSubcommands([usersAdd]), Command.withDescription("Manage the users file")),
    Command.make("token").pipe(Command.withSubcommands([tokenMint]), Command.withDescription("Signed login tokens"))
  ])
)

const cli = Command.run(root, { name: "tether-server", version: "0.1.0" })

// What the CLI needs (files for --users and friends, the terminal for prompts):
// not all of NodeContext, whose command executor and worker manager nothing here uses.
const cliContext = Layer.mergeAll(NodePath.layer, NodeTerminal.layer, NodeFileSystem.layer)

// A log reader that goes away (EPIPE) must not take the server and its sessions down.
Cli.survivableOutput()
cli(process.argv).pipe(Effect.provide(cliContext), NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown }))
