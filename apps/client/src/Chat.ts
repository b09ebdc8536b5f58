/**
 * The chat client: interactive (a terminal chat with rooms) or scripted (say
 * lines, exit once each is acknowledged). Both run on `ChatClient`: lines
 * typed while disconnected are queued and sent after the reconnect, missed
 * lines are replayed, and what happened is printed (`reconnected; 12 missed
 * messages replayed in #lobby`, `3 queued lines sent`, ...).
 */
import * as Cli from "@tether/node/Cli"
import * as NodeTether from "@tether/node/NodeTether"
import type * as Message from "@tether/protocol/Message"
import * as Printable from "@tether/protocol/Printable"
import * as ChatClient from "@tether/runtime/ChatClient"
import type * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as readline from "node:readline"

/** One server to dial. */
export interface Address {
  readonly host: string
  readonly port: number
}

export interface ChatOptions {
  /** Tried in turn: a failed server moves the client to the next one. */
  readonly servers: ReadonlyArray<Address>
  readonly user: string
  /** A password, or a signed login token. */
  readonly credential: { readonly password: string } | { readonly token: string }
  readonly tls?: NodeTether.TlsConnectOptions | undefined
  readonly heartbeatTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
}

/** Exit codes of the scripted client. */
export const ExitCodes = { loginRefused: 3, couldNotConnect: 4 } as const

/** `HOST:PORT` (the host may be a bracketed IPv6 address), or undefined. */
export const parseAddress = (text: string): Address | undefined => {
  const colon = text.lastIndexOf(":")
  if (colon <= 0) return undefined
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, "$1")
  const portText = text.slice(colon + 1)
  if (!/^\d{1,5}$/.test(portText)) return undefined
  const port = Number(portText)
  return host.length > 0 && port >= 1 && port <= 65535 ? { host, port } : undefined
}

const showAddress = (address: Address | undefined) =>
  address === undefined ? "" : address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

const clock = (at: number) => new Date(at).toTimeString().slice(0, 8)
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`

/** How a line said in a room reads: the room is named unless it is the current one. */
export const renderSaid = (said: Message.Said, room: string, current: string): string =>
  `[${clock(said.at)}] ${room === current ? "" : `${room} `}<${said.from}> ${said.text}`

/** How a connection state reads in the terminal's status line (escaped: reasons may quote the server). */
export const renderState = (state: Client.State, servers: ReadonlyArray<Address> = []): string =>
  Printable.escape(renderStateRaw(state, servers))

const renderStateRaw = (state: Client.State, servers: ReadonlyArray<Address>): string => {
  const at = (server: number | undefined) =>
    servers.length > 1 && server !== undefined ? ` ${showAddress(servers[server])}` : ""
  switch (state._tag) {
    case "Connecting":
      return state.attempt === 1 ? `* connecting${at(state.server)}...` : `* connecting${at(state.server)} (attempt ${state.attempt})...`
    case "Connected":
      return state.reconnected ? `* reconnected${at(state.server)}` : `* connected${at(state.server)}`
    case "Reconnecting":
      return `* ${state.reason}; reconnecting${servers.length > 1 ? ` to${at(state.server)}` : ""} in ${(state.delayMs / 1000).toFixed(1)} s, attempt ${state.attempt}${
        state.maxAttempts ? ` of ${state.maxAttempts}` : ""
      }`
    case "GaveUp":
      return `* gave up: ${state.reason}`
    case "Closed":
      return "* closed"
  }
}

/**
 * How an event of the chat client reads in the terminal (undefined: not
 * shown): one line, with whatever the network sent escaped (no ESC / CSI /
 * OSC sequence, C1 control, carriage return, new line or bidi override
 * reaches the terminal).
 */
export const renderEvent = (event: ChatClient.Event, current: string, servers: ReadonlyArray<Address> = []): string | undefined => {
  const line = renderEventRaw(event, current, servers)
  return line === undefined ? undefined : Printable.escape(line)
}

const renderEventRaw = (event: ChatClient.Event, current: string, servers: ReadonlyArray<Address>): string | undefined => {
  switch (event._tag) {
    case "Said":
      return renderSaid(event.said, event.room, current)
    case "Replayed":
      return event.count === 0
        ? undefined
        : `* reconnected; ${plural(event.count, "missed message", "missed messages")} replayed in ${event.room}`
    case "Unrecoverable":
      return `* missed messages in ${event.room} could not be recovered (${
        event.reason === "EpochChanged" ? "the server lost its history, e.g. it restarted" : "they are older than the server keeps"
      })`
    case "QueuedSent":
      return `* ${plural(event.count, "queued line", "queued lines")} sent`
    case "SayRefused":
      return `* not sent to ${event.line.room}: ${event.code}${event.detail ? ` (${event.detail})` : ""}: ${event.line.text.slice(0, 60)}`
    case "RoomJoined":
      return `* joined ${event.room}${event.current ? " (now the current room)" : ""}`
    case "RoomLeft":
      return `* left ${event.room}`
    case "RoomRefused":
      return `* ${event.room}: refused (${event.code}${event.detail ? `: ${event.detail}` : ""})`
    case "RoomList":
      return `* your rooms: ${event.rooms.join(", ")}`
    case "Joined":
      return `* ${event.user} joined ${event.room}`
    case "Left":
      return `* ${event.user} left ${event.room} (${event.reason})`
    case "Present":
      return `* here in ${event.room}: ${event.users.join(", ")}`
    case "Notice":
      return event.message._tag === "Bye"
        ? `* server closing the session: ${event.message.reason}`
        : `* server: ${event.message.message}`
    case "Connection":
      return event.state._tag === "Connecting" && event.state.attempt === 1 && event.state.server === 0
        ? undefined
        : renderStateRaw(event.state, servers)
    case "Acked":
      return undefined
  }
}

export const helpText = [
  "* type a line to say it in the current room (queued while disconnected, sent on reconnect)",
  "* /join #name   join a room and make it the current one",
  "* /leave        leave the current room (/leave #name: that one)",
  "* /rooms        list your rooms",
  "* /who          who is in the current room (/who #name: that one)",
  "* /quit         leave",
  "* //text        say a line that begins with /"
].join("\n")

const makeChat = (options: ChatOptions) =>
  ChatClient.make({
    connect: options.servers.map((address) =>
      NodeTether.connect({ host: address.host, port: address.port, connectTimeout: options.connectTimeout, tls: options.tls })
    ),
    user: options.user,
    password: "token" in options.credential ? { token: options.credential.token } : options.credential.password,
    heartbeat: Heartbeat.answer({ timeout: options.heartbeatTimeout })
  })

const failedToConnect = (error: Client.ConnectionLost | Client.LoginRefused) =>
  error._tag === "LoginRefused"
    ? Cli.exitWith(ExitCodes.loginRefused, `login refused: ${error.reason}`)
    : Cli.exitWith(ExitCodes.couldNotConnect, `could not connect: ${error.reason}`)

/** Says each line (queued while disconnected), then exits 0 once every one is acknowledged. */
export const scripted = (options: ChatOptions, lines: Stream.Stream<string>) =>
  Effect.gen(function*() {
    const chat = yield* makeChat(options)
    // Everything that happens is printed, one line each, for scripts to read.
    yield* chat.events.pipe(
      Stream.runForEach((event) =>
        Effect.gen(function*() {
          const line = renderEvent(event, yield* chat.currentRoom, options.servers)
          if (line !== undefined) process.stdout.write(`${line}\n`)
        })
      ),
      Effect.forkScoped
    )
    // Before the first connection, a server that does not answer ends the script (exit 4);
    // once connected, the client reconnects and what is typed meanwhile waits.
    const firstConnection = chat.awaitConnected.pipe(Effect.mapError(failedToConnect))
    yield* Effect.raceFirst(firstConnection, hopeless(chat, options.servers.length))
    // The terminal's commands work here too (/join #dev, /who, /quit ...), one after the other.
    const saying = lines.pipe(
      Stream.filter((line) => line.trim().length > 0),
      Stream.takeWhile((line) => line.trim() !== "/quit"),
      Stream.runForEach((line) => {
        const text = line.trim()
        const run = command(chat, text)
        if (run !== undefined) {
          const printed = Effect.flatMap(run, (answer) =>
            Effect.sync(() => {
              if (answer !== undefined) process.stdout.write(`${answer}\n`)
            }))
          // A script's next line belongs to the room it just joined: wait for the server's answer.
          const [name, room] = text.split(/\s+/, 2)
          return name === "/join" && room !== undefined ? untilAnswered(chat, room, printed) : printed
        }
        return Effect.asVoid(Effect.mapError(chat.say(toSay(line)), (error) => Cli.exitWith(1, `not queued: ${error.message}`)))
      }),
      Effect.zipRight(chat.awaitDrained)
    )
    yield* Effect.raceFirst(saying, hopeless(chat, options.servers.length))
  }).pipe(Effect.scoped)

/** Runs `join` and waits (up to 10 s) for the server to say the room was joined or refused. */
const untilAnswered = (chat: ChatClient.ChatClient, room: string, join: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const answer = yield* chat.events.pipe(
      Stream.filter((event) => (event._tag === "RoomJoined" || event._tag === "RoomRefused") && event.room === room),
      Stream.runHead,
      Effect.fork
    )
    // The subscription starts with the fiber; the answer needs a network round trip.
    yield* Effect.yieldNow()
    yield* join
    yield* answer.await.pipe(Effect.timeout("10 seconds"), Effect.ignore)
  })

/**
 * Fails with the exit the client's state calls for: the login refused (3);
 * gave up (4); or, before any connection, every server failed once (4).
 */
const hopeless = (chat: ChatClient.ChatClient, servers: number) =>
  chat.events.pipe(
    Stream.filterMap((event) => (event._tag === "Connection" ? Option.some(event.state) : Option.none<Client.State>())),
    Stream.mapAccum(false, (connectedOnce, state): [boolean, Option.Option<Client.State>] => [
      connectedOnce || state._tag === "Connected",
      state._tag === "GaveUp" || (!connectedOnce && state._tag === "Reconnecting" && state.attempt >= servers)
        ? Option.some(state)
        : Option.none()
    ]),
    Stream.filterMap((x) => x),
    Stream.runHead,
    Effect.flatMap((state) => {
      const reason = Option.match(state, {
        onNone: () => "closed",
        onSome: (s: Client.State) => (s._tag === "GaveUp" || s._tag === "Reconnecting" ? s.reason : s._tag)
      })
      const refused = /^login refused \(status \d+\): (.*)$/.exec(reason)
      return Effect.fail(
        refused
          ? Cli.exitWith(ExitCodes.loginRefused, `login refused: ${refused[1]}`)
          : Cli.exitWith(ExitCodes.couldNotConnect, `could not connect: ${reason}`)
      )
    })
  )

/** Lines of a piped stdin. */
export const stdinLines: Stream.Stream<string> = Stream.async<string>((emit) => {
  const rl = readline.createInterface({ input: process.stdin, terminal: false })
  rl.on("line", (line) => emit.single(line))
  rl.on("close", () => emit.end())
  return Effect.sync(() => rl.close())
})

/** A line to say as typed: `//text` says `/text` (a line that would read as a command). */
export const toSay = (line: string): string => line.trimStart().startsWith("//") ? line.replace("/", "") : line

/** What a typed command does; undefined: it is a line to say. */
export const command = (
  chat: ChatClient.ChatClient,
  text: string
): Effect.Effect<string | undefined> | undefined => {
  if (!text.startsWith("/") || text.startsWith("//")) return undefined
  const [name, arg] = text.split(/\s+/, 2) as [string, string | undefined]
  const notConnected = (effect: Effect.Effect<void, { readonly message: string }>) =>
    Effect.match(effect, { onFailure: (error) => `* ${error.message}`, onSuccess: () => undefined })
  switch (name) {
    case "/help":
      return Effect.succeed(helpText)
    case "/join":
      return arg === undefined ? Effect.succeed("* /join #name") : notConnected(chat.join(arg))
    case "/leave":
      return notConnected(chat.leave(arg))
    case "/rooms":
      return notConnected(chat.listRooms)
    case "/who":
      return notConnected(chat.who(arg))
    default:
      return Effect.succeed(`* unknown command ${name}; try /help`)
  }
}

/** The interactive terminal chat. */
export const interactive = (options: ChatOptions) =>
  Effect.gen(function*() {
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: `${options.user}> ` })
    yield* Effect.addFinalizer(() => Effect.sync(() => rl.close()))
    const chat = yield* makeChat(options)
    const prompt = () => rl.setPrompt(`${options.user} ${current}> `)
    let current = "#lobby"
    // Print above the prompt without mangling what is being typed.
    const print = (line: string) =>
      Effect.sync(() => {
        readline.clearLine(process.stdout, 0)
        readline.cursorTo(process.stdout, 0)
        process.stdout.write(`${line}\n`)
        prompt()
        rl.prompt(true)
      })
    yield* chat.events.pipe(
      Stream.runForEach((event) =>
        Effect.gen(function*() {
          current = yield* chat.currentRoom
          const line = renderEvent(event, current, options.servers)
          if (line !== undefined) yield* print(line)
        })
      ),
      Effect.forkScoped
    )
    const input = Stream.async<string>((emit) => {
      rl.on("line", (line) => emit.single(line))
      rl.on("close", () => emit.end())
    })
    prompt()
    rl.prompt()
    const typing = input.pipe(
      Stream.takeWhile((line) => line.trim() !== "/quit"),
      Stream.runForEach((line) => {
        const text = line.trim()
        if (text.length === 0) return Effect.sync(() => rl.prompt())
        const run = command(chat, text)
        if (run !== undefined) return Effect.flatMap(run, (answer) => (answer === undefined ? Effect.sync(() => rl.prompt()) : print(answer)))
        return chat.say(toSay(line)).pipe(
          Effect.zipRight(chat.state),
          Effect.flatMap((state) =>
            state._tag === "Connected"
              ? Effect.sync(() => rl.prompt())
              : Effect.flatMap(chat.queued, (n) => print(`* not connected: queued (${plural(n, "line", "lines")} waiting)`))
          ),
          Effect.catchAll((error) => print(`* not queued: ${error.message}`))
        )
      })
    )
    // Once the client gives up (or a login is refused) there is nothing left to type into.
    // The status line has said why; exit with the code that says it too.
    const gaveUp = hopeless(chat, options.servers.length).pipe(
      Effect.mapError((exit) => Cli.exitWith(exit.code, ""))
    )
    yield* Effect.raceFirst(typing, gaveUp)
    yield* chat.close
  }).pipe(Effect.scoped)
