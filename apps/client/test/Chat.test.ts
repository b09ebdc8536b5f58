import { assert, describe, it } from "@effect/vitest"
import * as Message from "@tether/protocol/Message"
import * as Chat from "../src/Chat.js"

describe("chat client rendering", () => {
  it("shows time and sender of what was said, the room when it is not the current one, and notices", () => {
    const at = new Date(2026, 10, 24, 9, 5, 7).getTime()
    const said = Message.Said.make({ from: "bob", text: "hi", at, seq: 1 })
    assert.strictEqual(Chat.renderEvent({ _tag: "Said", room: "#lobby", said, replayed: false }, "#lobby"), "[09:05:07] <bob> hi")
    assert.strictEqual(Chat.renderEvent({ _tag: "Said", room: "#ops", said, replayed: true }, "#lobby"), "[09:05:07] #ops <bob> hi")
    assert.strictEqual(Chat.renderEvent({ _tag: "Left", room: "#lobby", user: "bob", reason: "heartbeat timeout" }, "#lobby"), "* bob left #lobby (heartbeat timeout)")
    assert.strictEqual(Chat.renderEvent({ _tag: "Present", room: "#ops", users: ["alice", "bob"] }, "#lobby"), "* here in #ops: alice, bob")
    assert.isUndefined(Chat.renderEvent({ _tag: "Acked", id: 1, room: "#lobby" }, "#lobby"), "acks are not shown")
  })

  it("says what a reconnect recovered, what it could not, and what was queued", () => {
    assert.strictEqual(Chat.renderEvent({ _tag: "Replayed", room: "#lobby", count: 12 }, "#lobby"), "* reconnected; 12 missed messages replayed in #lobby")
    assert.strictEqual(Chat.renderEvent({ _tag: "Replayed", room: "#ops", count: 1 }, "#lobby"), "* reconnected; 1 missed message replayed in #ops")
    assert.isUndefined(Chat.renderEvent({ _tag: "Replayed", room: "#ops", count: 0 }, "#lobby"))
    assert.match(Chat.renderEvent({ _tag: "Unrecoverable", room: "#ops", reason: "EpochChanged" }, "#lobby")!, /^\* missed messages in #ops could not be recovered \(/)
    assert.strictEqual(Chat.renderEvent({ _tag: "QueuedSent", count: 3 }, "#lobby"), "* 3 queued lines sent")
    assert.strictEqual(Chat.renderEvent({ _tag: "QueuedSent", count: 1 }, "#lobby"), "* 1 queued line sent")
  })

  it("status lines say what the connection is doing, and which server when there are several", () => {
    assert.strictEqual(Chat.renderState({ _tag: "Connected" }), "* connected")
    assert.strictEqual(Chat.renderState({ _tag: "Connected", reconnected: true }), "* reconnected")
    assert.strictEqual(
      Chat.renderState({ _tag: "Reconnecting", attempt: 3, maxAttempts: 10, delayMs: 2000, reason: "connection lost" }),
      "* connection lost; reconnecting in 2.0 s, attempt 3 of 10"
    )
    const servers = [{ host: "127.0.0.1", port: 7373 }, { host: "::1", port: 7374 }]
    assert.strictEqual(
      Chat.renderState({ _tag: "Reconnecting", attempt: 1, maxAttempts: 10, delayMs: 1000, reason: "connection lost", server: 1 }, servers),
      "* connection lost; reconnecting to [::1]:7374 in 1.0 s, attempt 1 of 10"
    )
    assert.strictEqual(Chat.renderState({ _tag: "GaveUp", reason: "cannot connect" }), "* gave up: cannot connect")
  })

  it("--server takes HOST:PORT", () => {
    assert.deepStrictEqual(Chat.parseAddress("127.0.0.1:7373"), { host: "127.0.0.1", port: 7373 })
    assert.deepStrictEqual(Chat.parseAddress("[::1]:80"), { host: "::1", port: 80 })
    assert.deepStrictEqual(Chat.parseAddress("example.org:1"), { host: "example.org", port: 1 })
    for (const bad of ["7373", ":7373", "host:", "host:0", "host:65536", "host:12x"]) assert.isUndefined(Chat.parseAddress(bad), bad)
  })
})

describe("chat client escaping", () => {
  it("nothing from the network reaches the terminal as a control sequence", () => {
    const hostile = "\u001b[2J\u001b]52;c;aGVsbG8=\u0007\u009b31m\rfake\nline\u202eevil\u2028"
    const said = Message.Said.make({ from: "bob", text: hostile, at: 0, seq: 1 })
    const lines = [
      Chat.renderEvent({ _tag: "Said", room: "#lobby", said, replayed: false }, "#lobby"),
      Chat.renderEvent({ _tag: "Left", room: "#lobby", user: "bob", reason: hostile.slice(0, 200) }, "#lobby"),
      Chat.renderEvent({ _tag: "Notice", message: Message.Bye.make({ reason: hostile }) }, "#lobby"),
      Chat.renderEvent({ _tag: "Notice", message: Message.Failure.make({ code: "X", message: hostile }) }, "#lobby"),
      Chat.renderEvent({ _tag: "RoomRefused", room: "#x", code: "Unavailable", detail: hostile }, "#lobby"),
      Chat.renderEvent({ _tag: "Connection", state: { _tag: "GaveUp", reason: hostile } }, "#lobby"),
      Chat.renderState({ _tag: "GaveUp", reason: hostile })
    ]
    for (const line of lines) {
      assert.isDefined(line)
      assert.notMatch(line!, /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/)
      assert.include(line!, "\\x1b[2J")
    }
  })
})
