/**
 * Rooms and resume against the chat server (in-process, real loopback
 * sockets): replay of exactly what was missed, a restarted in-memory server
 * announced as unrecoverable history, a resent line acknowledged once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Message from "@tether/protocol/Message"
import * as History from "@tether/runtime/History"
import * as Presence from "@tether/runtime/Presence"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Modes from "../src/Modes.js"
import { common, connect, frame, json, type Peer } from "./fixtures/RawChat.js"

const until = (check: () => boolean, ms = 3000) =>
  Effect.gen(function*() {
    for (let waited = 0; !check() && waited < ms; waited += 20) yield* Effect.sleep("20 millis")
    assert.isTrue(check(), "condition reached in time")
  })

const of = <T extends Message.Message["_tag"]>(peer: Peer, tag: T) =>
  peer.messages.filter((m): m is Extract<Message.Message, { _tag: T }> => m._tag === tag)

/** A chat server over the given History (shared across "restarts" when the same layer value is built once). */
const chat = Modes.chat({ ...common, heartbeat: "off" })

const services = (history: Layer.Layer<History.History>) =>
  Layer.mergeAll(
    NodeTether.layerServer({ port: 0 }),
    Server.Authenticator.layerAnyone,
    history,
    Presence.layerMemory,
    Logger.minimumLogLevel(LogLevel.Error)
  )

describe("chat rooms and resume", () => {
  it.live("a client that was away gets exactly the lines it missed, in order, then live ones; lines go to their room only", () =>
    Effect.gen(function*() {
      const running = yield* chat
      const port = running.address.port
      const alice = yield* connect(port, { _tag: "Login", user: "alice", password: "pw" })
      const bob = yield* connect(port, { _tag: "Login", user: "bob", password: "pw" })
      yield* until(() => of(alice, "RoomJoined").length === 1 && of(bob, "RoomJoined").length === 1)
      bob.socket.write(frame({ _tag: "Join", room: "#ops" }))
      yield* until(() => of(bob, "RoomJoined").length === 2)
      alice.socket.write(Buffer.concat([1, 2, 3].map((i) => frame({ _tag: "Say", id: i, text: `before ${i}` }))))
      yield* until(() => of(bob, "Said").length === 3)
      const last = of(bob, "Said")[2]!
      assert.deepStrictEqual(of(bob, "Said").map((s) => s.offset), [1, 2, 3])
      // bob drops; alice talks on; bob comes back with his position.
      bob.socket.destroy()
      alice.socket.write(Buffer.concat([4, 5, 6, 7].map((i) => frame({ _tag: "Say", id: i, text: `missed ${i}` }))))
      yield* until(() => of(alice, "Ack").length === 7)
      const back = yield* connect(port, {
        _tag: "Login",
        user: "bob",
        password: "pw",
        resume: [{ room: "#lobby", epoch: last.epoch!, offset: last.offset! }]
      })
      yield* until(() => of(back, "Said").length === 4)
      const recovered = of(back, "Recovered")
      assert.strictEqual(recovered.length, 1)
      assert.strictEqual(recovered[0]!.replayed, 4)
      assert.deepStrictEqual(of(back, "Said").map((s) => s.text), ["missed 4", "missed 5", "missed 6", "missed 7"])
      // The Recovered answer precedes the replay; live lines follow it.
      const at = back.messages.findIndex((m) => m._tag === "Recovered")
      assert.isTrue(back.messages.slice(0, at).every((m) => m._tag !== "Said"))
      alice.socket.write(frame({ _tag: "Say", id: 8, text: "live 8" }))
      yield* until(() => of(back, "Said").length === 5)
      assert.deepStrictEqual(of(back, "Said").map((s) => s.offset), [4, 5, 6, 7, 8])
      // #ops heard nothing of #lobby.
      assert.isTrue(of(back, "Said").every((s) => s.room === "#lobby"))
    }).pipe(Effect.scoped, Effect.provide(services(History.layerMemory()))))

  it.live("a line resent after a lost Ack is acknowledged again, not said twice", () =>
    Effect.gen(function*() {
      const running = yield* chat
      const port = running.address.port
      const alice = yield* connect(port, { _tag: "Login", user: "alice", password: "pw" })
      const carol = yield* connect(port, { _tag: "Login", user: "carol", password: "pw" })
      yield* until(() => of(alice, "RoomJoined").length === 1 && of(carol, "RoomJoined").length === 1)
      alice.socket.write(frame({ _tag: "Say", id: 41, text: "once" }))
      alice.socket.write(frame({ _tag: "Say", id: 41, text: "once" }))
      yield* until(() => of(alice, "Ack").length === 2)
      yield* Effect.sleep("100 millis")
      assert.strictEqual(of(carol, "Said").length, 1)
      const [first, second] = of(alice, "Ack")
      assert.deepStrictEqual(first, second)
    }).pipe(Effect.scoped, Effect.provide(services(History.layerMemory()))))

  it.live("after a restart of an in-memory server, resume is answered Unrecoverable (EpochChanged), never a silent gap", () =>
    Effect.gen(function*() {
      const first = yield* Effect.scoped(
        Effect.gen(function*() {
          const running = yield* chat
          const alice = yield* connect(running.address.port, { _tag: "Login", user: "alice", password: "pw" })
          yield* until(() => of(alice, "RoomJoined").length === 1)
          alice.socket.write(frame({ _tag: "Say", id: 1, text: "before the restart" }))
          yield* until(() => of(alice, "Said").length === 1)
          alice.socket.destroy()
          return of(alice, "Said")[0]!
        }).pipe(Effect.provide(services(History.layerMemory())))
      )
      const running = yield* chat
      const back = yield* connect(running.address.port, {
        _tag: "Login",
        user: "alice",
        password: "pw",
        resume: [{ room: "#lobby", epoch: first.epoch!, offset: first.offset! }]
      })
      yield* until(() => of(back, "Unrecoverable").length === 1)
      assert.strictEqual(of(back, "Unrecoverable")[0]!.reason, "EpochChanged")
      assert.strictEqual(of(back, "Said").length, 0)
      // Lines said on the new server while a client was still away are not lost with the old history.
      const bob = yield* connect(running.address.port, { _tag: "Login", user: "bob", password: "pw" })
      yield* until(() => of(bob, "RoomJoined").length === 1)
      bob.socket.write(frame({ _tag: "Say", id: 1, text: "after the restart" }))
      yield* until(() => of(bob, "Ack").length === 1)
      const late = yield* connect(running.address.port, {
        _tag: "Login",
        user: "carol",
        password: "pw",
        resume: [{ room: "#lobby", epoch: first.epoch!, offset: first.offset! }]
      })
      yield* until(() => of(late, "Said").length === 1)
      assert.deepInclude(of(late, "Unrecoverable")[0], { reason: "EpochChanged", offset: 0 })
      assert.deepStrictEqual(of(late, "Said").map((s) => s.text), ["after the restart"])
      const at = late.messages.findIndex((m) => m._tag === "Unrecoverable")
      assert.isTrue(late.messages.slice(0, at).every((m) => m._tag !== "Said"), "the notice comes before the new history")
    }).pipe(Effect.scoped, Effect.provide(services(History.layerMemory()))))

  /**
   * bob joins, leaves; `missed` lines `line i<suffix>` go straight into the
   * history (no rate limit to wait for); bob comes back resuming from 0 and
   * reads until he has them all or is closed. Asserts the whole replay, in
   * order, on an open connection.
   */
  const replayAfterAway = (missed: number, suffix: string) =>
    Effect.gen(function*() {
      const running = yield* chat
      const history = yield* History.History
      const bob = yield* connect(running.address.port, { _tag: "Login", user: "bob", password: "pw" })
      yield* until(() => of(bob, "RoomJoined").length === 1)
      const { epoch } = of(bob, "RoomJoined")[0]!
      bob.socket.destroy()
      for (let i = 1; i <= missed; i++) {
        yield* history.publish("#lobby", (position, at) =>
          json.encodeText!(Message.Said.make({ from: "alice", text: `line ${i}${suffix}`, at, seq: 0, room: "#lobby", ...position })) as string)
      }
      const back = yield* connect(running.address.port, { _tag: "Login", user: "bob", password: "pw", resume: [{ room: "#lobby", epoch, offset: 0 }] })
      yield* until(() => of(back, "Said").length === missed || back.socket.destroyed || back.socket.readableEnded, 10_000)
      assert.deepInclude(of(back, "Recovered")[0], { replayed: missed })
      assert.deepStrictEqual(of(back, "Said").map((m) => Number(m.text.split(" ")[1])), Array.from({ length: missed }, (_, i) => i + 1))
      assert.isFalse(back.messages.some((m) => m._tag === "Bye"), "not closed")
    })

  it.live("a resume that replays more lines than a connection queues by default (1,024) gets them all, not a slow-consumer close", () =>
    replayAfterAway(1_500, "").pipe(Effect.scoped, Effect.provide(services(History.layerMemory({ maxEntries: 2_000 })))))

  // ~6 MB of lines while bob was away: over the connection's bound, under the history's.
  it.live("a resume whose replay is larger than a connection's byte bound (4 MiB) gets it all, not a slow-consumer close", () =>
    replayAfterAway(1_500, ` ${"x".repeat(4_000)}`).pipe(
      Effect.scoped,
      Effect.provide(services(History.layerMemory({ maxEntries: 2_000, maxBytes: 16 * 1024 * 1024 })))
    ))

  it.live("a repeat that arrives on a new connection while the first copy is still being published gets its Ack", () =>
    Effect.gen(function*() {
      const running = yield* chat
      const port = running.address.port
      const carol = yield* connect(port, { _tag: "Login", user: "carol", password: "pw" })
      const first = yield* connect(port, { _tag: "Login", user: "alice", password: "pw" })
      yield* until(() => of(first, "RoomJoined").length === 1 && of(carol, "RoomJoined").length === 1)
      first.socket.write(frame({ _tag: "Say", id: 5, text: "slow line" }))
      yield* Effect.sleep("30 millis")
      first.socket.destroy()
      yield* Effect.sleep("50 millis")
      const second = yield* connect(port, { _tag: "Login", user: "alice", password: "pw" })
      yield* until(() => of(second, "LoginResult").length === 1)
      second.socket.write(frame({ _tag: "Say", id: 5, text: "slow line" }))
      yield* until(() => of(second, "Ack").length === 1)
      assert.deepInclude(of(second, "Ack")[0], { id: 5, offset: 1 })
      yield* Effect.sleep("100 millis")
      assert.strictEqual(of(carol, "Said").length, 1, "said once")
    }).pipe(Effect.scoped, Effect.provide(services(slowHistory))))
})

/** The memory history with every publish taking 400 ms (as a far Redis would). */
const slowHistory: Layer.Layer<History.History> = Layer.effect(
  History.History,
  Effect.map(History.makeMemory(), (memory) => ({
    ...memory,
    publish: (room, render, options) => Effect.zipRight(Effect.sleep("400 millis"), memory.publish(room, render, options))
  }))
)
