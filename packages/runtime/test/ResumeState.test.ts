import { assert, describe, it } from "@effect/vitest"
import * as Message from "@tether/protocol/Message"
import * as ResumeState from "@tether/runtime/ResumeState"
import * as FastCheck from "effect/FastCheck"

describe("ResumeState", () => {
  it("shows a line once: after the last offset seen, per room and epoch", () => {
    const state = ResumeState.unsafeMake()
    assert.strictEqual(state.observe("#a", "e1", 5)._tag, "Reset", "first line of a room")
    assert.strictEqual(state.observe("#a", "e1", 6)._tag, "Next")
    assert.strictEqual(state.observe("#a", "e1", 6)._tag, "Duplicate")
    assert.strictEqual(state.observe("#a", "e1", 3)._tag, "Duplicate")
    assert.deepStrictEqual(state.observe("#a", "e1", 9), { _tag: "Gap", missed: 2 })
    assert.strictEqual(state.observe("#b", "e9", 1)._tag, "Reset")
    assert.strictEqual(state.observe("#a", "e2", 1)._tag, "Reset", "a new epoch starts over")
    assert.strictEqual(state.observe("#a", "e2", 1)._tag, "Duplicate")
    assert.deepStrictEqual(state.get("#a"), { epoch: "e2", offset: 1 })
    assert.isFalse(ResumeState.isShown({ _tag: "Duplicate" }))
    assert.isTrue(ResumeState.isShown({ _tag: "Gap", missed: 1 }))
  })

  it("positions set by RoomJoined / Recovered / Unrecoverable are what Login.resume presents", () => {
    const state = ResumeState.unsafeMake()
    state.set("#lobby", { epoch: "e", offset: 12 })
    state.set("#ops", { epoch: "f", offset: 0 })
    assert.strictEqual(state.observe("#lobby", "e", 12)._tag, "Duplicate")
    assert.strictEqual(state.observe("#lobby", "e", 13)._tag, "Next")
    state.set("#ops", { epoch: "g", offset: 40 })
    state.set("#gone", { epoch: "g", offset: 1 })
    state.forget("#gone")
    assert.isUndefined(state.get("#gone"))
    const login = Message.Login.make({ user: "alice", password: "pw", resume: state.positions() })
    assert.deepStrictEqual(login.resume, [{ room: "#lobby", epoch: "e", offset: 13 }, { room: "#ops", epoch: "g", offset: 40 }])
  })

  it("a Said without room is in #lobby; one without a position is always shown", () => {
    const state = ResumeState.unsafeMake()
    const said = (offset?: number) =>
      Message.Said.make({ from: "bob", text: "hi", at: 0, seq: 0, ...(offset !== undefined ? { epoch: "e", offset } : {}) })
    assert.strictEqual(state.observeSaid(said(1))._tag, "Reset")
    assert.deepStrictEqual(state.get(Message.defaultRoom), { epoch: "e", offset: 1 })
    assert.strictEqual(state.observeSaid(said(1))._tag, "Duplicate")
    assert.strictEqual(state.observeSaid(said())._tag, "Next")
    assert.strictEqual(state.observeSaid(said())._tag, "Next")
  })

  it("receive: RoomJoined and Unrecoverable set the position, Recovered does not (its Saids do), RoomLeft forgets", () => {
    const state = ResumeState.unsafeMake()
    const said = (room: string, epoch: string, offset: number) =>
      Message.Said.make({ from: "bob", text: "hi", at: 0, seq: 0, room, epoch, offset })
    assert.isUndefined(state.receive(Message.RoomJoined.make({ room: "#a", epoch: "e", offset: 4 })))
    assert.isUndefined(state.receive(Message.Recovered.make({ room: "#a", epoch: "e", offset: 6, replayed: 2 })))
    assert.deepStrictEqual(state.get("#a"), { epoch: "e", offset: 4 })
    assert.strictEqual(state.receive(said("#a", "e", 5))?._tag, "Next")
    assert.strictEqual(state.receive(said("#a", "e", 6))?._tag, "Next")
    assert.strictEqual(state.receive(said("#a", "e", 6))?._tag, "Duplicate")
    state.receive(Message.Unrecoverable.make({ room: "#a", reason: "EpochChanged", epoch: "f", offset: 90 }))
    assert.strictEqual(state.receive(said("#a", "f", 90))?._tag, "Duplicate")
    assert.strictEqual(state.receive(said("#a", "f", 91))?._tag, "Next")
    state.receive(Message.RoomLeft.make({ room: "#a" }))
    assert.isUndefined(state.get("#a"))
    assert.isUndefined(state.receive(Message.Ack.make({ id: 1 })))
  })

  it("positions are bounded by what a Login may carry", () => {
    const state = ResumeState.unsafeMake()
    for (let i = 0; i < Message.maxResumePositions + 5; i++) state.set(`#r${i}`, { epoch: "e", offset: i })
    assert.strictEqual(state.positions().length, Message.maxResumePositions)
  })

  it.prop("any delivery of a room's lines with repeats shows each offset exactly once, in order", [
    FastCheck.array(FastCheck.integer({ min: 1, max: 30 }), { maxLength: 200 })
  ], ([deliveries]) => {
    // A server delivers offsets 1..n in order, but any line may arrive again
    // (a replay overlapping live, a resend): what is shown is 1..max once.
    const state = ResumeState.unsafeMake()
    state.set("#a", { epoch: "e", offset: 0 })
    const shown: Array<number> = []
    let high = 0
    for (const d of deliveries) {
      const offset = Math.min(d, high + 1)
      high = Math.max(high, offset)
      if (ResumeState.isShown(state.observe("#a", "e", offset))) shown.push(offset)
    }
    assert.deepStrictEqual(shown, Array.from({ length: high }, (_, i) => i + 1))
  })
})
