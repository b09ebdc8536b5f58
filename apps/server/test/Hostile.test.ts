/**
 * Hostile peers against the real servers (in-process, real loopback sockets):
 * each costs a typed error, a log line and a closed connection; everyone else
 * keeps being served.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Server from "@tether/runtime/Server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Scope from "effect/Scope"
import * as net from "node:net"
import * as Modes from "../src/Modes.js"

const base: Modes.Common = {
  // Rate limits have their own test; the others flood on purpose.
  rateLimit: { messagesPerSecond: 1e6, burst: 1e6, bytesPerSecond: 1e12 },
  heartbeatInterval: Duration.millis(100),
  heartbeatTimeout: Duration.millis(400),
  loginTimeout: Duration.millis(400),
  maxFrameBytes: 64 * 1024,
  maxConnections: undefined,
  drainTimeout: Duration.seconds(2)
}

/** Every "connection closed" log line's error tag, as the server logged it. */
const closedReasons: Array<string> = []
const recordingLogger = Logger.make(({ annotations, message }) => {
  const text = Array.isArray(message) ? message.join(" ") : String(message)
  if (text.startsWith("connection closed")) {
    const tag = HashMap.get(annotations, "error")
    closedReasons.push(tag._tag === "Some" ? String(tag.value) : text.replace("connection closed: ", ""))
  }
})

const run = <A, E>(
  start: Effect.Effect<Modes.Running, never, SocketServer.SocketServer | Server.Authenticator | Scope.Scope>,
  body: (port: number, running: Modes.Running) => Effect.Effect<A, E, Scope.Scope>,
  users?: Record<string, string>
) =>
  Effect.gen(function*() {
    closedReasons.length = 0
    const running = yield* start
    return yield* body(running.address.port, running)
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(
      NodeTether.layerServer({ port: 0, backlog: 2048 }),
      users ? Server.Authenticator.layerUsers(users) : Server.Authenticator.layerAnyone,
      Logger.replace(Logger.defaultLogger, recordingLogger)
    ))
  )

interface Raw {
  readonly socket: net.Socket
  readonly received: () => Buffer
  /** Resolves with ms from open to close. */
  readonly closed: Promise<number>
}

const raw = (port: number) =>
  Effect.promise(() =>
    new Promise<Raw>((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port })
      let received = Buffer.alloc(0)
      socket.on("data", (chunk) => (received = Buffer.concat([received, chunk])))
      socket.on("error", () => {})
      const opened = Date.now()
      const closed = new Promise<number>((done) => socket.on("close", () => done(Date.now() - opened)))
      socket.once("connect", () => resolve({ socket, received: () => received, closed }))
      socket.once("error", reject)
    })
  )

const closedWithin = (peer: Raw, ms: number) =>
  Effect.promise(() => Promise.race([peer.closed, new Promise<number>((r) => setTimeout(() => r(-1), ms))]))

const json = Codec.json(Message.Message)
const lengthFrame = (message: Message.Message) =>
  Buffer.from(Frame.lengthPrefixed().encode(json.encode(message) as Uint8Array) as Uint8Array)

const chatClient = (port: number, user: string, onMessage: (m: Message.Message) => void = () => {}) =>
  Client.make({
    connect: NodeTether.connect({ port, connectTimeout: "1 second" }),
    framing: Frame.lengthPrefixed(),
    codec: json,
    dialect: TetherProtocol.dialect,
    heartbeat: Heartbeat.answer({ timeout: "2 seconds" }),
    login: TetherProtocol.clientLogin(user, "pw"),
    correlate: TetherProtocol.correlate,
    reconnect: false,
    onMessage: (m) => Effect.sync(() => onMessage(m))
  })

const typedReasons = new Set([
  "FrameError",
  "DecodeError",
  "ProtocolError",
  "HeartbeatTimeout",
  "DeadlineExceeded",
  "SlowConsumer",
  "SocketError",
  "quit",
  "login refused",
  "invalid user name or password",
  "the first message must be a login",
  "user already connected"
])

const garbage = FastCheck.sample(FastCheck.uint8Array({ minLength: 1, maxLength: 600 }), { numRuns: 25, seed: 4242 })

// Every hostile case runs against both engine drivers.
for (const driver of ["callback", "fiber"] as const) {
describe(`${driver} driver`, () => {
const common: Modes.Common = { ...base, driver }

describe("garbage against every mode", () => {
  for (const [mode, start] of [
    ["chat", Modes.chat({ ...common, heartbeat: "ping" })],
    ["echo", Modes.echo({ ...common, framing: "length" })],
    ["classic", Modes.classic(common)]
  ] as const) {
    it.live(`${mode}: random byte streams close with a typed reason; a good client is unaffected`, () =>
      run(start, (port) =>
        Effect.gen(function*() {
          // A good chat client (in chat mode) says a line before, during and after.
          const good = mode === "chat" ? yield* chatClient(port, "good") : undefined
          if (good) yield* good.awaitConnected
          const peers = yield* Effect.forEach(garbage, (bytes) =>
            Effect.gen(function*() {
              const peer = yield* raw(port)
              peer.socket.write(bytes)
              return peer
            }), { concurrency: 8 })
          if (good) yield* TetherProtocol.say(good, "still here", { timeout: "1 second" })
          // Every hostile connection ends: by a typed error, a login timeout or a heartbeat timeout.
          for (const peer of peers) assert.isAtLeast(yield* closedWithin(peer, 3000), 0, "closed")
          if (good) yield* TetherProtocol.say(good, "and still here", { timeout: "1 second" })
          yield* Effect.sleep("50 millis")
          assert.isAtLeast(closedReasons.length, garbage.length)
          for (const reason of closedReasons) {
            assert.isTrue(typedReasons.has(reason), `untyped close reason: ${reason}`)
          }
        })))
  }
})

describe("frame bombs", () => {
  it.live("a 4 GiB declared length is refused at once (chat, echo); a 65535 packet over a lower classic limit too", () =>
    Effect.gen(function*() {
      yield* run(Modes.chat({ ...common, heartbeat: "off" }), (port) =>
        Effect.gen(function*() {
          const peer = yield* raw(port)
          peer.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]))
          assert.isAtLeast(yield* closedWithin(peer, 300), 0, "closed well before any timeout")
        }))
      yield* run(Modes.classic({ ...common, maxFrameBytes: 1024, heartbeatTimeout: Duration.seconds(10) }), (port) =>
        Effect.gen(function*() {
          const peer = yield* raw(port)
          peer.socket.write(Buffer.from([0xff, 0xff]))
          assert.isAtLeast(yield* closedWithin(peer, 300), 0)
        }))
    }))
})

describe("slowloris and half-open peers", () => {
  it.live("part of a header then nothing; connect and never log in; log in then go silent: all closed on time", () =>
    run(Modes.chat({ ...common, heartbeat: "ping" }), (port) =>
      Effect.gen(function*() {
        const partial = yield* raw(port)
        partial.socket.write(Buffer.from([0, 0]))
        const mute = yield* raw(port)
        const silent = yield* raw(port)
        silent.socket.write(lengthFrame({ _tag: "Login", user: "silent", password: "pw" }))
        const good = yield* chatClient(port, "good")
        yield* good.awaitConnected
        const times = [yield* closedWithin(partial, 2000), yield* closedWithin(mute, 2000), yield* closedWithin(silent, 2000)]
        for (const t of times) {
          assert.isAtLeast(t, 350, "not before the login timeout / heartbeat timeout")
          assert.isBelow(t, 1500)
        }
        yield* TetherProtocol.say(good, "unaffected", { timeout: "1 second" })
      })))

  it.live("a client detects a silent server (no FIN) with its heartbeat", () =>
    Effect.gen(function*() {
      // A server that accepts and answers the login, then says nothing, ever.
      const sockets: Array<net.Socket> = []
      const server = net.createServer((socket) => {
        sockets.push(socket)
        socket.once("data", () => socket.write(lengthFrame({ _tag: "LoginResult", status: 0 })))
        socket.on("error", () => {})
      })
      const port = yield* Effect.promise(() =>
        new Promise<number>((r) => server.listen(0, "127.0.0.1", () => r((server.address() as net.AddressInfo).port)))
      )
      const client = yield* Client.make({
        connect: NodeTether.connect({ port }),
        framing: Frame.lengthPrefixed(),
        codec: json,
        dialect: TetherProtocol.dialect,
        heartbeat: Heartbeat.answer({ timeout: "300 millis" }),
        login: TetherProtocol.clientLogin("alice", "pw"),
        reconnect: false
      })
      yield* client.awaitConnected
      const started = Date.now()
      for (let i = 0; i < 200 && (yield* client.state)._tag !== "GaveUp"; i++) yield* Effect.sleep("10 millis")
      const state = yield* client.state
      assert.strictEqual(state._tag, "GaveUp")
      if (state._tag === "GaveUp") assert.match(state.reason, /heartbeat timeout/)
      assert.isBelow(Date.now() - started, 1000)
      for (const s of sockets) s.destroy()
      server.close()
    }).pipe(Effect.scoped))
})

describe("slow readers", () => {
  it.live("a peer that never reads is closed as a slow consumer; the others keep getting broadcasts", () =>
    run(Modes.chat({ ...common, heartbeat: "off" }), (port, running) =>
      Effect.gen(function*() {
        const slow = yield* raw(port)
        slow.socket.write(lengthFrame({ _tag: "Login", user: "slow", password: "pw" }))
        slow.socket.pause()
        let heard = 0
        const listener = yield* chatClient(port, "listener", (m) => {
          if (m._tag === "Said") heard++
        })
        const talker = yield* chatClient(port, "talker")
        yield* listener.awaitConnected
        yield* talker.awaitConnected
        const text = "x".repeat(16 * 1024)
        let said = 0
        // Bounded: at most 3,000 lines of 16 KiB (about 48 MiB through the broadcast).
        // A paused socket does not notice its own close, so watch the server's log.
        for (; said < 3000 && !closedReasons.includes("SlowConsumer"); said++) {
          yield* TetherProtocol.say(talker, text, { timeout: "2 seconds" })
        }
        assert.include(closedReasons, "SlowConsumer", "the slow reader was cut off")
        assert.isBelow(said, 3000)
        for (let i = 0; i < 100 && heard < said; i++) yield* Effect.sleep("20 millis")
        assert.strictEqual(heard, said, "every acknowledged line reached the reader that reads")
        assert.isAtLeast(running.stats.closed, 1)
      })))

  it.live("echo: a peer that writes without reading cannot make the server buffer without bound", () =>
    run(Modes.echo({ ...common, heartbeatInterval: undefined, heartbeatTimeout: undefined, framing: "length" }), (port) =>
      Effect.gen(function*() {
        const peer = yield* raw(port)
        peer.socket.pause()
        const frame = Buffer.concat([Buffer.from([0, 0, 0x40, 0]), Buffer.alloc(0x4000, 1)])
        let written = 0
        // Bounded: at most 64 MiB.
        // A paused socket does not notice its own close, so watch the server's log.
        while (written < 64 * 1024 * 1024 && !closedReasons.includes("ProtocolError") && !peer.socket.destroyed) {
          const ok = peer.socket.write(frame)
          written += frame.length
          if (!ok) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
        }
        for (let i = 0; i < 100 && !closedReasons.includes("ProtocolError"); i++) yield* Effect.sleep("20 millis")
        assert.include(closedReasons, "ProtocolError", "closed instead of buffered")
        assert.isBelow(written, 64 * 1024 * 1024)
      })))
})

describe("limits and credentials", () => {
  it.live("twice max-connections at once: the extras are refused with a message, the admitted carry on", () =>
    run(Modes.chat({ ...common, heartbeat: "off", maxConnections: 5 }), (port) =>
      Effect.gen(function*() {
        const peers = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), () => raw(port), { concurrency: "unbounded" })
        yield* Effect.sleep("300 millis")
        const refused = peers.filter((p) => p.received().toString().includes("TooManyConnections"))
        assert.strictEqual(refused.length, 5)
        for (const p of refused) assert.isAtLeast(yield* closedWithin(p, 1000), 0)
        const admitted = peers.filter((p) => !refused.includes(p))
        for (const [i, p] of admitted.entries()) p.socket.write(lengthFrame({ _tag: "Login", user: `u${i}`, password: "pw" }))
        yield* Effect.sleep("200 millis")
        for (const p of admitted) {
          assert.include(p.received().toString(), "\"status\":0")
          assert.strictEqual(yield* closedWithin(p, 0), -1, "still open")
        }
      })))

  it.live("a wrong password never reaches a handler; bad names are refused by the Schema", () =>
    Effect.gen(function*() {
      const handled: Array<string> = []
      const start = Effect.gen(function*() {
        const server = yield* Server.make<Message.Message>({
          framing: Frame.lengthPrefixed(),
          codec: json,
          login: TetherProtocol.serverLogin,
          handler: (session, message) => Effect.sync(() => handled.push(`${session.user}:${message._tag}`))
        })
        return { address: server.address as SocketServer.TcpAddress, stats: server.stats, connections: server.connections, sessions: () => server.registry.list() }
      })
      yield* run(start, (port) =>
        Effect.gen(function*() {
          const wrong = yield* raw(port)
          wrong.socket.write(Buffer.concat([lengthFrame({ _tag: "Login", user: "alice", password: "nope" }), lengthFrame({ _tag: "Who" })]))
          yield* closedWithin(wrong, 1000)
          assert.include(wrong.received().toString(), "\"status\":5")
          for (const user of ["", "x".repeat(33)]) {
            const bad = yield* raw(port)
            bad.socket.write(Frame.lengthPrefixed().encode(new TextEncoder().encode(JSON.stringify({ _tag: "Login", user, password: "pw" }))) as Uint8Array)
            assert.isAtLeast(yield* closedWithin(bad, 1000), 0)
          }
          const right = yield* raw(port)
          right.socket.write(Buffer.concat([lengthFrame({ _tag: "Login", user: "alice", password: "pw" }), lengthFrame({ _tag: "Who" })]))
          for (let i = 0; i < 50 && handled.length === 0; i++) yield* Effect.sleep("10 millis")
          assert.deepStrictEqual(handled, ["alice:Who"])
          assert.include(closedReasons, "DecodeError")
        }), { alice: "pw" })
    }))
})

describe("graceful drain", () => {
  it.live("every line the server acknowledged before shutdown reaches every connected recipient", () =>
    Effect.gen(function*() {
      const received = new Map<string, Array<string>>()
      const acked: Array<string> = []
      // The server in a scope of its own: closing it is what SIGTERM does.
      const inner = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone),
        inner
      )
      const running = yield* Modes.chat({ ...common, heartbeat: "off", drainTimeout: Duration.seconds(5) }).pipe(
        Scope.extend(inner),
        Effect.provide(context)
      )
      const port = running.address.port
      const receivers = ["r1", "r2", "r3"]
      for (const name of receivers) {
        received.set(name, [])
        const client = yield* chatClient(port, name, (m) => {
          if (m._tag === "Said") received.get(name)!.push(m.text)
        })
        yield* client.awaitConnected
      }
      const senders = yield* Effect.forEach(["s1", "s2"], (name) =>
        Effect.gen(function*() {
          const client = yield* chatClient(port, name)
          yield* client.awaitConnected
          return { name, client }
        }))
      // Senders say lines as fast as they are acknowledged until the server goes away.
      const talking = yield* Effect.forEach(senders, ({ client, name }) =>
        Effect.gen(function*() {
          for (let i = 0; i < 5000; i++) {
            const text = `${name}-${i}`
            const ok = yield* Effect.either(TetherProtocol.say(client, text, { timeout: "2 seconds" }))
            if (ok._tag === "Left") return
            acked.push(text)
          }
        }), { concurrency: "unbounded", discard: true }).pipe(Effect.fork)
      yield* Effect.sleep("300 millis")
      yield* Scope.close(inner, Exit.void)
      yield* Effect.fromFiber(talking)
      yield* Effect.sleep("100 millis")
      assert.isAbove(acked.length, 10, "the senders were busy when the server shut down")
      for (const name of receivers) {
        const got = new Set(received.get(name))
        const missing = acked.filter((text) => !got.has(text))
        assert.deepStrictEqual(missing, [], `${name} missed acknowledged lines`)
      }
    }).pipe(Effect.scoped))
})
})
}
