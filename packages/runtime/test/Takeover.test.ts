/**
 * Takeover end to end through real sockets: a ChatClient whose network goes
 * silent (the proxy stops relaying, both sockets stay open, so the server
 * still believes in the old connection) reconnects, presents its session's
 * resume secret and takes the session over at once, long before the
 * server's own heartbeat timeout would have freed the name; the lines in
 * flight when the network went silent are neither lost nor shown twice.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FaultProxy from "@tether/node/FaultProxy"
import * as NodeTether from "@tether/node/NodeTether"
import type * as Message from "@tether/protocol/Message"
import * as ChatClient from "@tether/runtime/ChatClient"
import * as ChatServer from "@tether/runtime/ChatServer"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as History from "@tether/runtime/History"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

interface Watched {
  readonly chat: ChatClient.ChatClient
  readonly said: Array<string>
  readonly ended: Array<string>
  reconnectedAt: number | undefined
}

const watch = (connect: ReturnType<typeof NodeTether.connect>, user: string) =>
  Effect.gen(function*() {
    const chat = yield* ChatClient.make({
      connect,
      user,
      password: "pw",
      // Silence noticed by the client in 600 ms; the server would take 60 s.
      heartbeat: Heartbeat.answer({ timeout: "600 millis" }),
      reconnect: { schedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(500))) }
    })
    const watched: Watched = { chat, said: [], ended: [], reconnectedAt: undefined }
    yield* chat.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "Said") watched.said.push(event.said.text)
          if (event._tag === "Connection" && event.state._tag === "Reconnecting") watched.ended.push(event.state.reason)
          if (event._tag === "Connection" && event.state._tag === "Connected" && event.state.reconnected) {
            watched.reconnectedAt ??= Date.now()
          }
        })
      ),
      Effect.forkScoped
    )
    return watched
  })

const eventually = (done: () => boolean, tries = 250) =>
  Effect.gen(function*() {
    for (let i = 0; i < tries && !done(); i++) yield* Effect.sleep("20 millis")
    return done()
  })

const ServerLayer = Layer.mergeAll(
  NodeTether.layerServer({ port: 0 }),
  Server.Authenticator.layerAnyone,
  History.layerMemory(),
  Logger.minimumLogLevel(LogLevel.Error)
)

describe("Takeover through a silent network", () => {
  it.live("a resume login with the session's secret takes over at once; nothing in flight is lost or shown twice", () =>
    Effect.gen(function*() {
      const history = yield* History.History
      const server = yield* ChatServer.make({ heartbeat: Heartbeat.ping({ interval: "200 millis", timeout: "60 seconds" }) })
      const port = (server.address as SocketServer.TcpAddress).port
      const proxy = yield* FaultProxy.make({ port })
      const talker = yield* watch(NodeTether.connect({ port: proxy.port, connectTimeout: "2 seconds" }), "talker")
      const listener = yield* watch(NodeTether.connect({ port, connectTimeout: "2 seconds" }), "listener")
      yield* talker.chat.awaitConnected
      yield* listener.chat.awaitConnected
      assert.isTrue(yield* eventually(() => server.registry.count() === 2))

      const typed = Array.from({ length: 30 }, (_, k) => `line ${k}`)
      let cutAt = 0
      for (const [k, text] of typed.entries()) {
        yield* talker.chat.say(text)
        yield* Effect.sleep("5 millis")
        if (k === 12) {
          // Lines 0..12 are on their way (some acknowledged, some not); the rest are typed into the silence.
          assert.strictEqual(proxy.cut(() => true, "silent"), 1)
          cutAt = Date.now()
        }
      }
      yield* talker.chat.awaitDrained.pipe(Effect.timeout("10 seconds"))
      assert.isDefined(talker.reconnectedAt)
      const resumedInMs = talker.reconnectedAt! - cutAt
      assert.isBelow(resumedInMs, 5_000, `resumed ${resumedInMs} ms after the cut, not after the server's 60 s timeout`)
      assert.deepStrictEqual(talker.ended, ["heartbeat timeout"], "one reconnect, never refused with 100")
      // The old connection was closed by the server: one session of talker, two connections in all.
      assert.strictEqual(server.registry.sessionsOf("talker").length, 1)
      assert.isTrue(yield* eventually(() => server.connections() === 2), "the taken-over connection is gone")

      const { epoch } = yield* history.position("#lobby")
      const recovery = yield* history.recover("#lobby", { epoch, offset: 0 })
      assert.strictEqual(recovery._tag, "Recovered")
      const lines = recovery._tag === "Recovered" ? recovery.entries.map((e) => (JSON.parse(e.payload) as Message.Said).text) : []
      assert.deepStrictEqual(lines, typed, "each line once, in order")
      assert.isTrue(yield* eventually(() => talker.said.length >= typed.length && listener.said.length >= typed.length))
      assert.deepStrictEqual(talker.said, typed, "the talker's transcript")
      assert.deepStrictEqual(listener.said, typed, "the listener's transcript")
    }).pipe(Effect.scoped, Effect.provide(ServerLayer)), { timeout: 30_000 })
})
