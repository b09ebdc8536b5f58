/**
 * The resume parts composed the way the server and client will wire them,
 * without sockets: a server (History.layerMemory, Dedupe, a fan-out through
 * each session's Replay gate) and clients (Outbox, ResumeState) whose
 * connections drop at random points, losing whatever was in flight either
 * way (a Say, an Ack, a Said, a replay). Afterwards every client's
 * transcript of each room is the room's history, and every typed line is in
 * it exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Message from "@tether/protocol/Message"
import * as Dedupe from "@tether/runtime/Dedupe"
import * as History from "@tether/runtime/History"
import * as Outbox from "@tether/runtime/Outbox"
import * as Replay from "@tether/runtime/Replay"
import * as ResumeState from "@tether/runtime/ResumeState"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"

const rooms = ["#lobby", "#ops"] as const

type ToServer =
  | { readonly _tag: "Say"; readonly id: number; readonly room: string; readonly text: string }
type ToClient = Message.Ack | Message.Said | Message.Recovered | Message.Unrecoverable | Message.RoomJoined

const said = (room: string, epoch: string, entry: History.Entry): Message.Said =>
  Message.Said.make({ from: "x", text: entry.payload, at: entry.at, seq: 0, room, epoch, offset: entry.offset })

interface Connection {
  readonly toServer: Array<ToServer>
  readonly toClient: Array<ToClient>
  alive: boolean
}

interface Session {
  readonly user: string
  readonly connection: Connection
  readonly gates: Map<string, Replay.Gate>
}

interface Client {
  readonly user: string
  readonly outbox: Outbox.Outbox
  readonly state: ResumeState.ResumeState
  readonly transcript: Map<string, Array<string>>
  /** Where the client first learned its position in each room: it joined there. */
  readonly start: Map<string, number>
  connection: Connection | undefined
  typed: number
}

type Step =
  | { readonly _tag: "type"; readonly client: number; readonly room: number }
  | { readonly _tag: "toServer" | "toClient" | "drop" | "reconnect"; readonly client: number }

const clientCount = 3
const client = FastCheck.integer({ min: 0, max: clientCount - 1 })
const step: FastCheck.Arbitrary<Step> = FastCheck.oneof(
  { weight: 3, arbitrary: FastCheck.record({ _tag: FastCheck.constant("type" as const), client, room: FastCheck.integer({ min: 0, max: 1 }) }) },
  { weight: 4, arbitrary: FastCheck.record({ _tag: FastCheck.constant("toServer" as const), client }) },
  { weight: 6, arbitrary: FastCheck.record({ _tag: FastCheck.constant("toClient" as const), client }) },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("drop" as const), client }) },
  { weight: 2, arbitrary: FastCheck.record({ _tag: FastCheck.constant("reconnect" as const), client }) }
)

describe("Reconnect (the resume parts composed, connections dropping at random)", () => {
  it.effect.prop("every acknowledged or queued line is in its room once, and every client saw each room's history exactly", [
    FastCheck.array(step, { minLength: 20, maxLength: 150, size: "max" })
  ], ([steps]) =>
    Effect.scoped(Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const dedupe = yield* Dedupe.make<History.Position>()
      const sessions = new Set<Session>()
      const observations: Array<ResumeState.Observation["_tag"] | "Unrecoverable"> = []
      // Server: one subscription per room, fanning out through each session's gate.
      for (const room of rooms) {
        yield* history.subscribe(room, (_room, epoch, entry) => {
          for (const session of sessions) {
            if (session.gates.get(room)!.offer(epoch, entry)) {
              session.connection.toClient.push(said(room, epoch, entry))
            }
          }
        })
      }
      const serverReceive = (session: Session, message: ToServer) =>
        Effect.gen(function*() {
          const seen = dedupe.begin(session.user, message.id, `${message.room}\n${message.text}`)
          if (seen._tag === "Done") return session.connection.toClient.push({ _tag: "Ack", id: message.id })
          if (seen._tag === "InFlight") return
          const position = yield* history.publish(message.room, () => message.text)
          seen.complete(position)
          session.connection.toClient.push({ _tag: "Ack", id: message.id })
        })
      const login = (c: Client) =>
        Effect.gen(function*() {
          const connection: Connection = { toServer: [], toClient: [], alive: true }
          c.connection = connection
          const session: Session = { user: c.user, connection, gates: new Map() }
          const resume = new Map(c.state.positions().map((p) => [p.room, p]))
          for (const room of rooms) {
            const from = resume.get(room)
            if (from === undefined) {
              const position = yield* history.position(room)
              const gate = Replay.unsafeMakeGate(position)
              // A fresh member: its gate opens at the room's position now.
              yield* Replay.resume(history, room, gate, () => {})
              session.gates.set(room, gate)
              connection.toClient.push(Message.RoomJoined.make({ room, ...position }))
              continue
            }
            const gate = Replay.unsafeMakeGate(from)
            session.gates.set(room, gate)
            sessions.add(session)
            yield* Replay.resume(history, room, gate, (outcome) => {
              connection.toClient.push(
                outcome._tag === "Recovered"
                  ? Message.Recovered.make({ room, ...outcome.position, replayed: outcome.replay.length })
                  : Message.Unrecoverable.make({ room, reason: outcome.reason, ...outcome.position })
              )
              for (const entry of [...outcome.replay, ...outcome.live]) {
                connection.toClient.push(said(room, outcome.position.epoch, entry))
              }
            })
          }
          sessions.add(session)
          // The client resends what waits for an Ack, in order, same ids.
          for (const line of c.outbox.pending()) connection.toServer.push({ _tag: "Say", ...line })
          return session
        })
      const clients: Array<Client> = Array.from({ length: clientCount }, (_, i) => ({
        user: `u${i}`,
        outbox: Outbox.unsafeMake({ capacity: 1_000, firstId: i * 1000 }),
        state: ResumeState.unsafeMake(),
        transcript: new Map(rooms.map((r) => [r, []])),
        start: new Map(),
        connection: undefined,
        typed: 0
      }))
      const sessionOf = new Map<Client, Session>()
      const drop = (c: Client) => {
        const session = sessionOf.get(c)
        if (session === undefined) return
        session.connection.alive = false
        sessions.delete(session)
        sessionOf.delete(c)
        c.connection = undefined
      }
      const clientReceive = (c: Client, message: ToClient) => {
        if (message._tag === "Ack") {
          c.outbox.ack(message.id)
          return
        }
        const room = message.room ?? Message.defaultRoom
        // A client that never got a position (dropped before its first
        // RoomJoined) joins afresh at its next login: its view starts there.
        if (c.state.get(room) === undefined && message._tag !== "Said") c.start.set(room, message.offset)
        if (message._tag === "Unrecoverable") observations.push("Unrecoverable")
        const observation = c.state.receive(message)
        if (observation !== undefined) {
          observations.push(observation._tag)
          if (ResumeState.isShown(observation)) c.transcript.get(room)!.push(message._tag === "Said" ? message.text : "?")
        }
      }
      for (const c of clients) sessionOf.set(c, yield* login(c))
      for (const s of steps) {
        const c = clients[s.client]!
        switch (s._tag) {
          case "type": {
            const line = Either.getOrThrow(c.outbox.offer(rooms[s.room]!, `${c.user}-${c.typed++}`))
            c.connection?.toServer.push({ _tag: "Say", ...line })
            break
          }
          case "toServer": {
            const message = c.connection?.toServer.shift()
            if (message !== undefined) yield* serverReceive(sessionOf.get(c)!, message)
            break
          }
          case "toClient": {
            const message = c.connection?.toClient.shift()
            if (message !== undefined) clientReceive(c, message)
            break
          }
          case "drop":
            drop(c)
            break
          case "reconnect":
            if (c.connection === undefined) sessionOf.set(c, yield* login(c))
        }
      }
      // Everyone comes back and the network settles.
      for (const c of clients) if (c.connection === undefined) sessionOf.set(c, yield* login(c))
      for (let busy = true; busy;) {
        busy = false
        for (const c of clients) {
          const up = c.connection!.toServer.shift()
          if (up !== undefined) (busy = true, yield* serverReceive(sessionOf.get(c)!, up))
          const down = c.connection!.toClient.shift()
          if (down !== undefined) (busy = true, clientReceive(c, down))
        }
      }
      const typed = clients.flatMap((c) => Array.from({ length: c.typed }, (_, k) => `${c.user}-${k}`)).sort()
      const allSaid: Array<string> = []
      for (const room of rooms) {
        const { epoch } = yield* history.position(room)
        const recovery = yield* history.recover(room, { epoch, offset: 0 })
        assert.strictEqual(recovery._tag, "Recovered")
        const lines = recovery._tag === "Recovered" ? recovery.entries.map((e) => e.payload) : []
        allSaid.push(...lines)
        for (const c of clients) {
          assert.deepStrictEqual(c.transcript.get(room), lines.slice(c.start.get(room)!), `${c.user} in ${room}`)
        }
      }
      assert.deepStrictEqual(allSaid.sort(), typed, "every typed line is said exactly once")
      for (const c of clients) assert.strictEqual(c.outbox.size(), 0)
      assert.notInclude(observations, "Gap")
      assert.notInclude(observations, "Unrecoverable")
    })), { fastCheck: { numRuns: 80 } })
})
