import { assert, describe, it } from "@effect/vitest"
import * as Message from "@tether/protocol/Message"
import * as Chat from "../src/Chat.js"

describe("chat client rendering", () => {
  it("shows time and sender of what was said, and notices", () => {
    const at = new Date(2026, 10, 24, 9, 5, 7).getTime()
    assert.strictEqual(Chat.render(Message.Said.make({ from: "bob", text: "hi", at, seq: 1 })), "[09:05:07] <bob> hi")
    assert.strictEqual(Chat.render(Message.Left.make({ user: "bob", reason: "heartbeat timeout" })), "* bob left (heartbeat timeout)")
    assert.strictEqual(Chat.render(Message.Present.make({ users: ["alice", "bob"] })), "* here: alice, bob")
    assert.isUndefined(Chat.render(Message.Ack.make({ id: 1 })), "acks are not shown")
  })

  it("status lines say what the connection is doing", () => {
    assert.strictEqual(Chat.renderState({ _tag: "Connected" }), "* connected")
    assert.strictEqual(
      Chat.renderState({ _tag: "Reconnecting", attempt: 3, maxAttempts: 10, delayMs: 2000, reason: "connection lost" }),
      "* connection lost; reconnecting in 2.0 s, attempt 3 of 10"
    )
    assert.strictEqual(Chat.renderState({ _tag: "GaveUp", reason: "cannot connect" }), "* gave up: cannot connect")
  })

  it("nothing from the network reaches the terminal as a control sequence", () => {
    const hostile = "\u001b[2J\u001b]52;c;aGVsbG8=\u0007\u009b31m\rfake\nline\u202eevil\u2028"
    const lines = [
      Chat.render(Message.Said.make({ from: "bob", text: hostile, at: 0, seq: 1 })),
      Chat.render(Message.Left.make({ user: "bob", reason: hostile.slice(0, 200) })),
      Chat.render(Message.Bye.make({ reason: hostile })),
      Chat.render(Message.Failure.make({ code: "X", message: hostile })),
      Chat.renderState({ _tag: "GaveUp", reason: hostile })
    ]
    for (const line of lines) {
      assert.isDefined(line)
      assert.notMatch(line!, /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/)
      assert.include(line!, "\\x1b[2J")
    }
  })
})
