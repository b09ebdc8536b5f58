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
})
