/**
 * The web chat page's state transitions (no DOM): reconnect backoff and
 * attempts as the CLI client counts them, rooms (join, leave, switch; a
 * transcript and who is here per room), own lines pending until the server
 * has them, refusals, what a resume recovered, and exactly-once display with
 * the runtime's `ResumeState` and `Outbox` (the same helpers the page uses).
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Message from "@tether/protocol/Message"
import * as Outbox from "@tether/runtime/Outbox"
import * as ResumeState from "@tether/runtime/ResumeState"
import * as Either from "effect/Either"
import * as Chat from "../web/chatState.js"

const lobbyJoined: Message.Message = { _tag: "RoomJoined", room: "#lobby", epoch: "e1", offset: 0 }
const up = Chat.received(Chat.connected(Chat.loggingIn(Chat.initial, "ann"), 0), lobbyJoined, 0)

const said = (room: string, offset: number, text: string, from = "bo", epoch = "e1"): Message.Message => ({
  _tag: "Said",
  from,
  text,
  at: offset,
  seq: offset,
  room,
  epoch,
  offset
})

/** What the page does with each message: the ResumeState observes it, the state shows it (or not). */
const feed = (state: Chat.State, resume: ResumeState.ResumeState, messages: ReadonlyArray<Message.Message>) =>
  messages.reduce((s, m) => Chat.received(s, m, 0, resume.receive(m)), state)

const texts = (state: Chat.State, room = state.current) => (state.room[room]?.lines ?? []).map((l) => l.text)

describe("web chat state", () => {
  it("backs off 1 s doubling to 32 s", () => {
    assert.deepStrictEqual([1, 2, 3, 4, 5, 6, 7, 10].map(Chat.backoffMs), [1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000])
  })

  it("after a session that was up: reconnecting in 1 s, attempt 1 of 10; then 2 s, attempt 2; gives up after 10", () => {
    let state = Chat.disconnected(up, 1, "connection closed", 10_000)
    assert.deepStrictEqual(state.connection, {
      _tag: "Reconnecting",
      attempt: 1,
      maxAttempts: 10,
      at: 11_000,
      reason: "connection closed"
    })
    assert.strictEqual(Chat.describe(state, 10_000), "reconnecting in 1 s, attempt 1 of 10")
    assert.deepStrictEqual(Chat.currentRoom(state).present, [])
    for (let attempt = 1; attempt < 10; attempt++) {
      state = Chat.retrying(state)
      assert.deepStrictEqual(state.connection, { _tag: "Connecting", attempt })
      state = Chat.disconnected(state, attempt, "cannot connect", 0)
      assert.strictEqual(state.connection._tag, "Reconnecting")
    }
    assert.strictEqual(Chat.describe(state, 0), "reconnecting in 32 s, attempt 10 of 10")
    state = Chat.disconnected(Chat.retrying(state), 10, "cannot connect", 0)
    assert.deepStrictEqual(state.connection, { _tag: "GaveUp", reason: "cannot connect" })
  })

  it("the status counts down to the next attempt: reconnecting in 4 s, attempt 3 of 10", () => {
    let state = Chat.disconnected(Chat.retrying(Chat.disconnected(up, 1, "closed", 0)), 1, "cannot connect", 0)
    assert.strictEqual(Chat.describe(state, 0), "reconnecting in 2 s, attempt 2 of 10")
    assert.strictEqual(Chat.describe(state, 1500), "reconnecting in 1 s, attempt 2 of 10")
    state = Chat.disconnected(Chat.retrying(state), 2, "cannot connect", 0)
    assert.strictEqual(Chat.describe(state, 0), "reconnecting in 4 s, attempt 3 of 10")
  })

  it("keeps who is here sorted and unique per room through Present, Joined and Left", () => {
    let state = Chat.received(up, { _tag: "Present", users: ["cy", "ann", "bo"] }, 0)
    state = Chat.received(state, { _tag: "Joined", user: "al" }, 0)
    state = Chat.received(state, { _tag: "Joined", user: "bo", room: "#lobby" }, 0)
    state = Chat.received(state, { _tag: "Left", user: "cy", reason: "quit" }, 0)
    state = Chat.received(state, { _tag: "RoomJoined", room: "#x", epoch: "e2", offset: 0 }, 0)
    state = Chat.received(state, { _tag: "Present", users: ["zed", "ann"], room: "#x" }, 0)
    assert.deepStrictEqual(state.room["#lobby"]?.present, ["al", "ann", "bo"])
    assert.deepStrictEqual(Chat.currentRoom(state).present, ["ann", "zed"])
    assert.deepStrictEqual(texts(state, "#lobby").slice(-3), ["al joined", "bo joined", "cy left (quit)"])
  })

  it("rooms: joining shows the room, lines go to their room's transcript, switching and leaving", () => {
    let state = Chat.received(up, { _tag: "RoomJoined", room: "#x", epoch: "e2", offset: 4 }, 0)
    assert.deepStrictEqual(state.rooms, ["#lobby", "#x"])
    assert.strictEqual(state.current, "#x")
    state = Chat.received(state, said("#lobby", 1, "in the lobby"), 0)
    state = Chat.received(state, said("#x", 5, "in x"), 0)
    assert.deepStrictEqual(texts(state), ["you joined #x", "in x"])
    assert.strictEqual(Chat.switchTo(state, "#nowhere"), state)
    state = Chat.switchTo(state, "#lobby")
    assert.deepStrictEqual(texts(state).slice(-1), ["in the lobby"])
    state = Chat.received(Chat.switchTo(state, "#x"), { _tag: "RoomLeft", room: "#x" }, 0)
    assert.deepStrictEqual(state.rooms, ["#lobby"])
    assert.strictEqual(state.current, "#lobby")
    assert.isUndefined(state.room["#x"])
    state = Chat.received(state, { _tag: "RoomRefused", room: "#y", code: "TooManyRooms" }, 0)
    assert.deepStrictEqual(texts(state).slice(-1), ["#y: TooManyRooms"])
  })

  it("an own line is pending until its Said or Ack; its Said is shown once, where the room put it", () => {
    const outbox = Outbox.unsafeMake({ firstId: 7 })
    const resume = ResumeState.unsafeMake()
    let state = feed(up, resume, [lobbyJoined])
    const line = Either.getOrThrow(outbox.offer("#lobby", "hi"))
    state = Chat.said(state, line.room, line.id, line.text, 0)
    assert.deepInclude(state.room["#lobby"]!.lines.at(-1), { kind: "own", id: 7, pending: true })
    state = feed(state, resume, [said("#lobby", 1, "before mine"), said("#lobby", 2, "hi", "ann"), { _tag: "Ack", id: 7 }])
    outbox.ack(7)
    assert.deepStrictEqual(texts(state).slice(-2), ["before mine", "hi"])
    assert.deepInclude(state.room["#lobby"]!.lines.at(-1), { kind: "own", id: 7, pending: false })
    assert.strictEqual(outbox.size(), 0)
    // The same Said again (a resend's echo, an overlapping replay) is not shown twice.
    const again = feed(state, resume, [said("#lobby", 2, "hi", "ann"), said("#lobby", 1, "before mine")])
    assert.deepStrictEqual(texts(again), texts(state))
  })

  it("lines typed while disconnected stay pending through the reconnect and keep their ids", () => {
    const outbox = Outbox.unsafeMake({ firstId: 40 })
    let state = Chat.disconnected(up, 1, "closed", 0)
    for (const text of ["one", "two"]) {
      const line = Either.getOrThrow(outbox.offer(state.current, text))
      state = Chat.said(state, line.room, line.id, line.text, 0)
    }
    state = Chat.connected(Chat.retrying(state), 0)
    assert.deepStrictEqual(outbox.pending().map((l) => [l.id, l.text]), [[40, "one"], [41, "two"]])
    const own = state.room["#lobby"]!.lines.filter((l) => l.kind === "own")
    assert.deepStrictEqual(own.map((l) => [l.id, l.pending]), [[40, true], [41, true]])
  })

  it("a retryable refusal keeps the line pending; NotMember marks it refused", () => {
    let state = Chat.said(Chat.said(up, "#lobby", 1, "a", 0), "#lobby", 2, "b", 0)
    state = Chat.received(state, { _tag: "SayRefused", id: 1, code: "RateLimited", retryAfter: 500 }, 0)
    state = Chat.received(state, { _tag: "SayRefused", id: 2, code: "NotMember", detail: "not in #lobby" }, 0)
    const own = state.room["#lobby"]!.lines.filter((l) => l.kind === "own")
    assert.deepStrictEqual(own.map((l) => [l.pending, l.refused]), [[true, undefined], [false, "not in #lobby"]])
  })

  it("after a reconnect: 12 missed messages replayed in #lobby, shown once and in order; or could not be recovered", () => {
    const resume = ResumeState.unsafeMake()
    let state = feed(up, resume, [lobbyJoined, { _tag: "RoomJoined", room: "#x", epoch: "x1", offset: 3 }, said("#lobby", 1, "l1")])
    assert.deepStrictEqual(resume.positions(), [
      { room: "#lobby", epoch: "e1", offset: 1 },
      { room: "#x", epoch: "x1", offset: 3 }
    ])
    state = Chat.connected(Chat.retrying(Chat.disconnected(state, 1, "closed", 0)), 0)
    const replay = Array.from({ length: 12 }, (_, i) => said("#lobby", i + 2, `m${i + 2}`))
    state = feed(state, resume, [
      { _tag: "Recovered", room: "#lobby", epoch: "e1", offset: 13, replayed: 12 },
      ...replay,
      { _tag: "Unrecoverable", room: "#x", reason: "EpochChanged", epoch: "x2", offset: 0 },
      // A live line that overlaps the replay is not shown again.
      said("#lobby", 13, "m13")
    ])
    assert.strictEqual(
      Chat.describe(state, 0),
      "connected · 12 missed messages replayed in #lobby · missed messages in #x could not be recovered"
    )
    const lobby = texts(state, "#lobby").filter((t) => /^[lm]\d+$/.test(t))
    assert.deepStrictEqual(lobby, ["l1", ...replay.map((_, i) => `m${i + 2}`)])
    assert.deepStrictEqual(texts(state, "#x").slice(-1), ["missed messages in #x could not be recovered"])
    assert.deepStrictEqual(resume.get("#x"), { epoch: "x2", offset: 0 })
    // The next disconnect clears what that reconnect recovered.
    assert.deepStrictEqual(Chat.disconnected(state, 1, "closed", 0).notices, [])
  })

  it("after EpochChanged the new history's lines, sent from its first, are shown once", () => {
    const resume = ResumeState.unsafeMake()
    let state = feed(up, resume, [lobbyJoined, said("#lobby", 1, "old")])
    state = Chat.connected(Chat.retrying(Chat.disconnected(state, 1, "closed", 0)), 0)
    state = feed(state, resume, [
      { _tag: "Unrecoverable", room: "#lobby", reason: "EpochChanged", epoch: "e2", offset: 0 },
      said("#lobby", 1, "new 1", "bo", "e2"),
      said("#lobby", 2, "new 2", "bo", "e2"),
      said("#lobby", 2, "new 2", "bo", "e2")
    ])
    assert.deepStrictEqual(texts(state).filter((t) => t.startsWith("new") || t === "old"), ["old", "new 1", "new 2"])
    assert.strictEqual(Chat.describe(state, 0), "connected · missed messages in #lobby could not be recovered")
  })

  it("bounds each transcript", () => {
    let state = up
    for (let i = 0; i < Chat.maxLines + 10; i++) state = Chat.received(state, said("#lobby", i + 1, `${i}`), 0)
    assert.strictEqual(Chat.currentRoom(state).lines.length, Chat.maxLines)
    assert.strictEqual(Chat.currentRoom(state).lines.at(-1)?.text, `${Chat.maxLines + 9}`)
  })

  it("a refused login goes back to the form with the reason", () => {
    const state = Chat.loginRefused(Chat.loggingIn(Chat.initial, "ann"), 1, 100, "user already connected", 0)
    assert.isUndefined(state.user)
    assert.deepStrictEqual(state.connection, { _tag: "LoggedOut", error: "user already connected" })
    const wrong = Chat.loginRefused(Chat.retrying(Chat.disconnected(up, 1, "closed", 0)), 1, 5, "invalid credentials", 0)
    assert.deepStrictEqual(wrong.connection, { _tag: "LoggedOut", error: "invalid credentials" })
  })

  it("on a reconnect, already connected (the old connection not yet noticed gone) is a failed attempt, not the end", () => {
    const state = Chat.loginRefused(Chat.retrying(Chat.disconnected(up, 1, "closed", 0)), 1, 100, "user already connected", 0)
    assert.strictEqual(state.user, "ann")
    assert.deepStrictEqual(state.rooms, ["#lobby"])
    assert.strictEqual(Chat.describe(state, 0), "reconnecting in 2 s, attempt 2 of 10")
  })
})
