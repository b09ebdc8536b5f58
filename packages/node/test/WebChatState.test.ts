/**
 * The web chat page's state transitions (no DOM): reconnect backoff and
 * attempts as the CLI client counts them, who is here, the transcript bound.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chat from "../web/chatState.js"

const up = Chat.connected(Chat.loggingIn(Chat.initial, "ann"), 0)

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
    assert.strictEqual(Chat.describe(state.connection, 10_000), "reconnecting in 1 s, attempt 1 of 10")
    assert.deepStrictEqual(state.present, [])
    for (let attempt = 1; attempt < 10; attempt++) {
      state = Chat.retrying(state)
      assert.deepStrictEqual(state.connection, { _tag: "Connecting", attempt })
      state = Chat.disconnected(state, attempt, "cannot connect", 0)
      assert.strictEqual(state.connection._tag, "Reconnecting")
    }
    assert.strictEqual(Chat.describe(state.connection, 0), "reconnecting in 32 s, attempt 10 of 10")
    state = Chat.disconnected(Chat.retrying(state), 10, "cannot connect", 0)
    assert.deepStrictEqual(state.connection, { _tag: "GaveUp", reason: "cannot connect" })
  })

  it("the status counts down to the next attempt", () => {
    const state = Chat.disconnected(Chat.retrying(Chat.disconnected(up, 1, "closed", 0)), 1, "cannot connect", 0)
    assert.strictEqual(Chat.describe(state.connection, 0), "reconnecting in 2 s, attempt 2 of 10")
    assert.strictEqual(Chat.describe(state.connection, 1500), "reconnecting in 1 s, attempt 2 of 10")
  })

  it("keeps who is here sorted and unique through Present, Joined and Left", () => {
    let state = Chat.received(up, { _tag: "Present", users: ["cy", "ann", "bo"] }, 0)
    state = Chat.received(state, { _tag: "Joined", user: "al" }, 0)
    state = Chat.received(state, { _tag: "Joined", user: "bo" }, 0)
    state = Chat.received(state, { _tag: "Left", user: "cy", reason: "quit" }, 0)
    assert.deepStrictEqual(state.present, ["al", "ann", "bo"])
    assert.deepStrictEqual(state.lines.slice(-3).map((l) => l.text), ["al joined", "bo joined", "cy left (quit)"])
  })

  it("marks an own line acknowledged by its Ack, and bounds the transcript", () => {
    let state = Chat.said(up, 7, "hi", 0)
    assert.strictEqual(state.lines.at(-1)?.acked, false)
    state = Chat.received(state, { _tag: "Ack", id: 7 }, 0)
    assert.strictEqual(state.lines.at(-1)?.acked, true)
    for (let i = 0; i < Chat.maxLines + 10; i++) {
      state = Chat.received(state, { _tag: "Said", from: "bo", text: `${i}`, at: 0, seq: i }, 0)
    }
    assert.strictEqual(state.lines.length, Chat.maxLines)
    assert.strictEqual(state.lines.at(-1)?.text, `${Chat.maxLines + 9}`)
  })

  it("a refused login goes back to the form with the reason", () => {
    const state = Chat.refused(Chat.loggingIn(Chat.initial, "ann"), "user already connected")
    assert.isUndefined(state.user)
    assert.deepStrictEqual(state.connection, { _tag: "LoggedOut", error: "user already connected" })
  })
})
