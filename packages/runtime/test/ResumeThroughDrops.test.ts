/**
 * End to end through real sockets: a ChatServer (in-memory history), a
 * fault-injecting proxy that cuts connections at random points (mid-frame
 * included) on a FastCheck-generated schedule, and ChatClients that say
 * lines in two rooms through the drops. Afterwards every client's
 * transcript of each room is the server's history of it: no gap, no
 * duplicate, every typed line exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as ChatClient from "@tether/runtime/ChatClient"
import * as ChatServer from "@tether/runtime/ChatServer"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as History from "@tether/runtime/History"
import * as Server from "@tether/runtime/Server"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as FaultProxy from "@tether/node/FaultProxy"
import * as Transcripts from "@tether/testing/Transcripts"

const rooms = ["#lobby", "#ops"] as const
const clientCount = 3
const linesEach = 20

const run = (schedule: ReadonlyArray<FaultProxy.Cut>) =>
  Effect.gen(function*() {
    const history = yield* History.History
    const server = yield* ChatServer.make({ heartbeat: Heartbeat.ping({ interval: "1 second", timeout: "5 seconds" }) })
    const proxy = yield* FaultProxy.make({ port: (server.address as SocketServer.TcpAddress).port }, schedule)
    const clients: Array<Transcripts.Transcript> = []
    for (let i = 0; i < clientCount; i++) {
      const chat = yield* ChatClient.make({
        connect: NodeTether.connect({ port: proxy.port, connectTimeout: "2 seconds" }),
        user: `u${i}`,
        password: "secret",
        heartbeat: Heartbeat.answer({ timeout: "5 seconds" }),
        reconnect: { schedule: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(1_000))) }
      })
      const transcript = yield* Transcripts.record(chat, rooms)
      clients.push(transcript)
    }
    // Everyone in both rooms before anyone speaks (a join cut off before its answer is asked again).
    const inBoth = yield* Transcripts.joinAll(clients, "#ops")
    assert.isTrue(inBoth, "every client joined #ops")
    // Each says its lines, alternating rooms, paced so that drops fall among them.
    yield* Transcripts.sayLines(clients, linesEach, rooms)
    for (const { chat } of clients) yield* chat.awaitDrained.pipe(Effect.timeout("20 seconds"))
    const histories = yield* Transcripts.histories(history, rooms)
    for (const room of rooms) assert.isDefined(histories.get(room), `${room}'s history recovered`)
    const settled = yield* Transcripts.settled(clients, histories)
    for (const [i, c] of clients.entries()) {
      assert.deepStrictEqual(c.trouble, [], `u${i} saw no gap, refusal or unrecoverable room`)
      for (const room of rooms) assert.deepStrictEqual(c.said.get(room), histories.get(room), `u${i}'s transcript of ${room}`)
    }
    assert.isTrue(settled)
    const typed = clients.flatMap((_, i) => Array.from({ length: linesEach }, (_, k) => `u${i}-${k}`)).sort()
    assert.deepStrictEqual([...histories.get("#lobby")!, ...histories.get("#ops")!].sort(), typed, "each typed line once")
    return proxy.cuts()
  })

const ServerLayer = Layer.mergeAll(
  NodeTether.layerServer({ port: 0 }),
  Server.Authenticator.layerAnyone,
  History.layerMemory()
)

describe("Resume end to end through a fault-injecting proxy", () => {
  it.live.prop(
    "clients in two rooms through random drops: every transcript is the server's history, no gap, no duplicate",
    [FaultProxy.arbitrarySchedule(10, 4_000)],
    ([schedule]) => Effect.scoped(run(schedule)).pipe(Effect.provide(ServerLayer), Effect.asVoid),
    { timeout: 120_000, fastCheck: { numRuns: 6 } }
  )
})
