import { assert, describe, it } from "@effect/vitest"
import * as Message from "@tether/protocol/Message"
import * as ChatClient from "@tether/runtime/ChatClient"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as ScriptedServer from "./fixtures/ScriptedServer.js"

const ok = Message.LoginResult.make({ status: 0 })
const said = (room: string, epoch: string, offset: number, text = `line ${offset}`) =>
  Message.Said.make({ from: "bob", text, at: 0, seq: 0, room, epoch, offset })

/** A chat client on a scripted server, its events collected. */
const start = (options: Partial<ChatClient.Options> = {}) =>
  Effect.gen(function*() {
    const server = ScriptedServer.make()
    const chat = yield* ChatClient.make({
      connect: server.connect,
      user: "alice",
      password: "secret",
      firstId: 100,
      reconnect: { base: "1 second", jitter: false },
      ...options
    })
    const events: Array<ChatClient.Event> = []
    yield* chat.events.pipe(Stream.runForEach((e) => Effect.sync(() => events.push(e))), Effect.forkScoped)
    yield* ScriptedServer.settle
    const chatEvents = () => events.filter((e) => e._tag !== "Connection")
    return { server, chat, events, chatEvents }
  })

/** Drops the current connection and lets the client dial again (after its backoff: 1 s, 2 s, ...). */
const redial = (server: ScriptedServer.ScriptedServer) =>
  Effect.gen(function*() {
    const before = server.peers.length
    server.peers.at(-1)!.memory.reset()
    yield* ScriptedServer.settle
    for (let i = 0; i < 64 && server.peers.length === before; i++) {
      yield* TestClock.adjust("1 second")
      yield* ScriptedServer.settle
    }
    assert.strictEqual(server.peers.length, before + 1, "dialled again")
    return server.peers.at(-1)!
  })

describe("ChatClient", () => {
  it.scoped("the login presents the last position seen in each room, rebuilt at each reconnect", () =>
    Effect.gen(function*() {
      const { server } = yield* start()
      const first = server.peers[0]!
      assert.deepStrictEqual(first.take(), [Message.Login.make({ user: "alice", password: "secret" })], "nothing to resume yet")
      first.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 5 }), said("#lobby", "e1", 6))
      first.send(Message.RoomJoined.make({ room: "#ops", epoch: "e2", offset: 0 }))
      yield* ScriptedServer.settle
      const second = yield* redial(server)
      assert.strictEqual(server.peers.length, 2)
      assert.deepStrictEqual(second.take(), [
        Message.Login.make({
          user: "alice",
          password: "secret",
          resume: [{ room: "#lobby", epoch: "e1", offset: 6 }, { room: "#ops", epoch: "e2", offset: 0 }]
        })
      ])
    }))

  it.scoped("lines typed while disconnected are queued, then sent in order with their original ids, and leave only on Ack", () =>
    Effect.gen(function*() {
      const { server, chat, chatEvents } = yield* start()
      const first = server.peers[0]!
      first.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 0 }))
      yield* ScriptedServer.settle
      first.take()
      const a = yield* chat.say("a")
      yield* ScriptedServer.settle
      assert.deepStrictEqual(first.take(), [Message.Say.make({ id: 100, text: "a", room: "#lobby" })])
      // The Ack of "a" is lost with the connection; "b" is typed while away.
      first.memory.reset()
      yield* ScriptedServer.settle
      const b = yield* chat.say("b")
      assert.strictEqual(yield* chat.queued, 2)
      yield* TestClock.adjust("1 second")
      yield* ScriptedServer.settle
      const second = server.peers[1]!
      assert.strictEqual(second.take()[0]!._tag, "Login")
      second.send(ok, Message.Recovered.make({ room: "#lobby", epoch: "e1", offset: 0, replayed: 0 }))
      yield* ScriptedServer.settle
      const c = yield* chat.say("c")
      yield* ScriptedServer.settle
      assert.deepStrictEqual(second.take(), [
        Message.Say.make({ id: a.id, text: "a", room: "#lobby" }),
        Message.Say.make({ id: b.id, text: "b", room: "#lobby" }),
        Message.Say.make({ id: c.id, text: "c", room: "#lobby" })
      ])
      assert.deepStrictEqual([a.id, b.id, c.id], [100, 101, 102])
      second.send(Message.Ack.make({ id: 100 }), Message.Ack.make({ id: 100 }))
      yield* ScriptedServer.settle
      assert.strictEqual(yield* chat.queued, 2, "a repeated Ack removes nothing more")
      second.send(Message.Ack.make({ id: 101 }), Message.Ack.make({ id: 102 }))
      yield* ScriptedServer.settle
      assert.strictEqual(yield* chat.queued, 0)
      yield* chat.awaitAck(b.id)
      yield* chat.awaitDrained
      assert.deepStrictEqual(
        chatEvents().filter((e) => e._tag === "QueuedSent" || e._tag === "Acked").map((e) => e._tag === "Acked" ? e.id : `queued ${e.count}`),
        [100, 101, "queued 2", 102],
        "the two lines that waited are announced once both are acknowledged (c was sent live)"
      )
    }))

  it.scoped("a Said at or before the last offset seen is dropped; replayed lines are marked and counted", () =>
    Effect.gen(function*() {
      const { server, chatEvents } = yield* start()
      const first = server.peers[0]!
      first.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 3 }), said("#lobby", "e1", 4))
      yield* ScriptedServer.settle
      const second = yield* redial(server)
      second.send(
        ok,
        Message.Recovered.make({ room: "#lobby", epoch: "e1", offset: 6, replayed: 2 }),
        said("#lobby", "e1", 5),
        said("#lobby", "e1", 6),
        said("#lobby", "e1", 6, "again"),
        said("#lobby", "e1", 4, "old"),
        said("#lobby", "e1", 7)
      )
      yield* ScriptedServer.settle
      const shown = chatEvents().flatMap((e) =>
        e._tag === "Said" ? [`${e.said.offset}${e.replayed ? " replayed" : ""}`] : e._tag === "Replayed" ? [`replayed ${e.count} in ${e.room}`] : []
      )
      assert.deepStrictEqual(shown, ["4", "5 replayed", "6 replayed", "replayed 2 in #lobby", "7"])
    }))

  it.scoped("an unrecoverable room is announced and continues from the server's position", () =>
    Effect.gen(function*() {
      const { server, chatEvents } = yield* start()
      server.peers[0]!.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 9 }))
      yield* ScriptedServer.settle
      const second = yield* redial(server)
      second.send(
        ok,
        Message.Unrecoverable.make({ room: "#lobby", reason: "EpochChanged", epoch: "e2", offset: 0 }),
        said("#lobby", "e2", 1)
      )
      yield* ScriptedServer.settle
      const third = yield* redial(server)
      assert.deepStrictEqual(
        (third.take()[0] as Message.Login).resume,
        [{ room: "#lobby", epoch: "e2", offset: 1 }]
      )
      assert.deepStrictEqual(
        chatEvents().filter((e) => e._tag === "Unrecoverable" || e._tag === "Said").map((e) => e._tag),
        ["Unrecoverable", "Said"]
      )
    }))

  it.scoped("a full outbox refuses a new line with OutboxFull and keeps the ones queued", () =>
    Effect.gen(function*() {
      const { chat, server } = yield* start({ outboxCapacity: 3 })
      server.peers[0]!.memory.reset()
      yield* ScriptedServer.settle
      for (const text of ["1", "2", "3"]) yield* chat.say(text)
      const error = yield* chat.say("4").pipe(Effect.flip)
      assert.strictEqual(error._tag, "OutboxFull")
      assert.include(error.message, "3 lines are already waiting")
      assert.strictEqual(yield* chat.queued, 3)
      const invalid = yield* chat.say("x", "lobby").pipe(Effect.flip)
      assert.strictEqual(invalid._tag, "InvalidInput")
    }))

  it.scoped("a retryable refusal is resent with the same id after retryAfter, ahead of lines typed meanwhile; a final one drops the line and fails awaitAck", () =>
    Effect.gen(function*() {
      const { chat, server, chatEvents } = yield* start()
      const peer = server.peers[0]!
      peer.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 0 }))
      yield* ScriptedServer.settle
      peer.take()
      const a = yield* chat.say("a")
      const b = yield* chat.say("b", "#ops")
      const rejected = yield* Effect.fork(chat.awaitAck(b.id))
      yield* ScriptedServer.settle
      peer.take()
      peer.send(
        Message.SayRefused.make({ id: a.id, code: "Unavailable", retryAfter: 500 }),
        Message.SayRefused.make({ id: b.id, code: "NotMember" })
      )
      yield* ScriptedServer.settle
      const error = yield* Fiber.join(rejected).pipe(Effect.flip)
      assert.strictEqual(error._tag, "SayRejected")
      assert.strictEqual(yield* chat.queued, 1)
      // A line typed meanwhile waits behind the refused one.
      const c = yield* chat.say("c")
      yield* TestClock.adjust(499)
      yield* ScriptedServer.settle
      assert.deepStrictEqual(peer.take(), [])
      yield* TestClock.adjust(1)
      yield* ScriptedServer.settle
      assert.deepStrictEqual(peer.take(), [
        Message.Say.make({ id: a.id, text: "a", room: "#lobby" }),
        Message.Say.make({ id: c.id, text: "c", room: "#lobby" })
      ])
      assert.deepStrictEqual(chatEvents().filter((e) => e._tag === "SayRefused").map((e) => e._tag === "SayRefused" && e.line.text), ["b"])
    }))

  it.scoped("rooms: join makes the room current once joined, say goes there, leave falls back", () =>
    Effect.gen(function*() {
      const { chat, server } = yield* start()
      const peer = server.peers[0]!
      peer.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 0 }))
      yield* ScriptedServer.settle
      peer.take()
      yield* chat.join("#ops")
      assert.strictEqual(yield* chat.currentRoom, "#lobby", "not before the server says so")
      peer.send(Message.RoomJoined.make({ room: "#ops", epoch: "e2", offset: 0 }))
      yield* ScriptedServer.settle
      assert.strictEqual(yield* chat.currentRoom, "#ops")
      yield* chat.say("hi")
      yield* chat.who()
      yield* chat.leave()
      yield* chat.listRooms
      yield* ScriptedServer.settle
      assert.deepStrictEqual(peer.take(), [
        Message.Join.make({ room: "#ops" }),
        Message.Say.make({ id: 100, text: "hi", room: "#ops" }),
        Message.Who.make({ room: "#ops" }),
        Message.Leave.make({ room: "#ops" }),
        Message.Rooms.make({})
      ])
      peer.send(Message.RoomLeft.make({ room: "#ops" }))
      yield* ScriptedServer.settle
      assert.strictEqual(yield* chat.currentRoom, "#lobby")
      assert.deepStrictEqual(yield* chat.rooms, ["#lobby"])
    }))

  it.scoped("with two servers, a refused dial moves to the second, and a lost connection back to the first", () =>
    Effect.gen(function*() {
      const one = ScriptedServer.make()
      const two = ScriptedServer.make()
      one.refuse = true
      const chat = yield* ChatClient.make({
        connect: [one.connect, two.connect],
        user: "alice",
        password: "secret",
        reconnect: { base: "1 second", jitter: false }
      })
      yield* ScriptedServer.settle
      assert.strictEqual(one.dials(), 1)
      assert.strictEqual(two.dials(), 0)
      const state = yield* chat.state
      assert.strictEqual(state._tag === "Reconnecting" && state.server, 1)
      yield* TestClock.adjust("1 second")
      yield* ScriptedServer.settle
      assert.strictEqual(two.dials(), 1)
      two.peers[0]!.send(ok, Message.RoomJoined.make({ room: "#lobby", epoch: "e1", offset: 2 }))
      yield* ScriptedServer.settle
      assert.deepStrictEqual(yield* chat.state, { _tag: "Connected", server: 1, reconnected: false })
      one.refuse = false
      two.peers[0]!.memory.reset()
      yield* ScriptedServer.settle
      // The second failure in 30 s: the backoff has grown to 2 s.
      yield* TestClock.adjust("2 seconds")
      yield* ScriptedServer.settle
      assert.strictEqual(one.dials(), 2)
      assert.deepStrictEqual(
        (one.peers[0]!.take()[0] as Message.Login).resume,
        [{ room: "#lobby", epoch: "e1", offset: 2 }],
        "resumes on the other server from the same position"
      )
    }))
})
