/**
 * The chat client: interactive (a terminal chat) or scripted (say lines,
 * exit once each is acknowledged).
 */
import * as Cli from "@tether/node/Cli"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Printable from "@tether/protocol/Printable"
import * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as readline from "node:readline"

export interface ChatOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  /** A password, or a signed login token. */
  readonly credential: { readonly password: string } | { readonly token: string }
  readonly tls?: NodeTether.TlsConnectOptions | undefined
  readonly heartbeatTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
}

/** Exit codes of the scripted client. */
export const ExitCodes = { loginRefused: 3, couldNotConnect: 4 } as const

const clock = (at: number) => new Date(at).toTimeString().slice(0, 8)

/**
 * How a message from the server reads in the terminal: one line, with
 * whatever the network sent escaped (no ESC / CSI / OSC sequence, C1
 * control, carriage return, new line or bidi override reaches the terminal).
 */
export const render = (message: Message.Message): string | undefined => {
  const line = renderRaw(message)
  return line === undefined ? undefined : Printable.escape(line)
}

const renderRaw = (message: Message.Message): string | undefined => {
  switch (message._tag) {
    case "Said":
      return `[${clock(message.at)}] <${message.from}> ${message.text}`
    case "Joined":
      return `* ${message.user} joined`
    case "Left":
      return `* ${message.user} left (${message.reason})`
    case "Present":
      return `* here: ${message.users.join(", ")}`
    case "Bye":
      return `* server closing the session: ${message.reason}`
    case "Failure":
      return `* server: ${message.message}`
    default:
      return undefined
  }
}

/** How a connection state reads in the terminal's status line (escaped: reasons may quote the server). */
export const renderState = (state: Client.State): string => Printable.escape(renderStateRaw(state))

const renderStateRaw = (state: Client.State): string => {
  switch (state._tag) {
    case "Connecting":
      return state.attempt === 1 ? "* connecting..." : `* connecting (attempt ${state.attempt})...`
    case "Connected":
      return "* connected"
    case "Reconnecting":
      return `* ${state.reason}; reconnecting in ${(state.delayMs / 1000).toFixed(1)} s, attempt ${state.attempt}${
        state.maxAttempts ? ` of ${state.maxAttempts}` : ""
      }`
    case "GaveUp":
      return `* gave up: ${state.reason}`
    case "Closed":
      return "* closed"
  }
}

const makeClient = (options: ChatOptions, onMessage: (m: Message.Message) => Effect.Effect<void>, reconnect: boolean) =>
  Client.make({
    connect: NodeTether.connect({
      host: options.host,
      port: options.port,
      connectTimeout: options.connectTimeout,
      tls: options.tls
    }),
    framing: Frame.lengthPrefixed(),
    codec: Codec.json(Message.Message),
    dialect: TetherProtocol.dialect,
    heartbeat: Heartbeat.answer({ timeout: options.heartbeatTimeout }),
    login: TetherProtocol.clientLogin(
      options.user,
      "token" in options.credential ? { token: options.credential.token } : options.credential.password
    ),
    correlate: TetherProtocol.correlate,
    onMessage,
    ...(reconnect ? {} : { reconnect: false as const })
  })

const failedToConnect = (error: Client.ConnectionLost | Client.LoginRefused) =>
  error._tag === "LoginRefused"
    ? Cli.exitWith(ExitCodes.loginRefused, `login refused: ${error.reason}`)
    : Cli.exitWith(ExitCodes.couldNotConnect, `could not connect: ${error.reason}`)

/** Says each line (waiting for each Ack), then exits 0. */
export const scripted = (options: ChatOptions, lines: Stream.Stream<string>) =>
  Effect.gen(function*() {
    // What others say meanwhile is printed, one line each, for scripts to read.
    const client = yield* makeClient(options, (m) => {
      const line = render(m)
      return line === undefined ? Effect.void : Effect.sync(() => process.stdout.write(`${line}\n`))
    }, false)
    yield* Effect.mapError(client.awaitConnected, failedToConnect)
    yield* lines.pipe(
      Stream.filter((line) => line.length > 0),
      Stream.runForEach((line) =>
        TetherProtocol.say(client, line, { timeout: "10 seconds" }).pipe(
          Effect.mapError((error) => Cli.exitWith(1, `not accepted: ${error.message}`))
        )
      )
    )
  }).pipe(Effect.scoped)

/** Lines of a piped stdin. */
export const stdinLines: Stream.Stream<string> = Stream.async<string>((emit) => {
  const rl = readline.createInterface({ input: process.stdin, terminal: false })
  rl.on("line", (line) => emit.single(line))
  rl.on("close", () => emit.end())
  return Effect.sync(() => rl.close())
})

/** The interactive terminal chat. */
export const interactive = (options: ChatOptions) =>
  Effect.gen(function*() {
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: `${options.user}> ` })
    yield* Effect.addFinalizer(() => Effect.sync(() => rl.close()))
    // Print above the prompt without mangling what is being typed.
    const print = (line: string) =>
      Effect.sync(() => {
        readline.clearLine(process.stdout, 0)
        readline.cursorTo(process.stdout, 0)
        process.stdout.write(`${line}\n`)
        rl.prompt(true)
      })
    const client = yield* makeClient(options, (m) => {
      const line = render(m)
      return line === undefined ? Effect.void : print(line)
    }, true)
    yield* client.states.pipe(
      Stream.changesWith((a, b) => JSON.stringify(a) === JSON.stringify(b)),
      Stream.runForEach((state) => print(renderState(state))),
      Effect.forkScoped
    )
    const input = Stream.async<string>((emit) => {
      rl.on("line", (line) => emit.single(line))
      rl.on("close", () => emit.end())
    })
    rl.prompt()
    // Once the client gives up (or a login is refused) there is nothing left to type into.
    // The status line has said why; exit with the code that says it too.
    const gaveUp = client.states.pipe(
      Stream.filter((state) => state._tag === "GaveUp"),
      Stream.runHead,
      Effect.zipRight(client.awaitConnected),
      Effect.mapError((error) => Cli.exitWith(failedToConnect(error).code, "")),
      Effect.zipRight(Effect.fail(Cli.exitWith(ExitCodes.couldNotConnect, "")))
    )
    const typing = input.pipe(
      Stream.takeWhile((line) => line.trim() !== "/quit"),
      Stream.runForEach((line) => {
        const text = line.trim()
        if (text.length === 0) return Effect.sync(() => rl.prompt())
        if (text === "/who") return Effect.ignore(client.send(Message.Who.make({})))
        if (text === "/help") return print("* type a line to say it; /who lists who is here; /quit leaves")
        if (text.startsWith("/")) return print(`* unknown command ${text}; try /help`)
        return TetherProtocol.say(client, line, { timeout: "10 seconds" }).pipe(
          Effect.catchAll((error) => print(`* not sent: ${error.message}`)),
          Effect.zipRight(Effect.sync(() => rl.prompt()))
        )
      })
    )
    yield* Effect.raceFirst(typing, gaveUp)
    yield* client.close
  }).pipe(Effect.scoped)
