import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Wire from "@tether/protocol/Wire"
import * as History from "@tether/runtime/History"
import type { Session } from "@tether/runtime/Session"
import * as Effect from "effect/Effect"
import { RoomFanout } from "../src/internal/roomFanout.js"

/** A member that records what it was sent. */
const member = (id: number) => {
  const sent: Array<unknown> = []
  const session = { id, unsafeSend: (message: unknown) => sent.push(message) !== 0 } as unknown as Session<Message.Message>
  return { session, sent }
}

/** A fan-out over an in-memory history, with two members to be. */
const setup = Effect.gen(function*() {
  const history = yield* History.makeMemory()
  const fanout = new RoomFanout(history, yield* Effect.scope, 200)
  fanout.wire = Wire.make(Frame.lengthPrefixed(), Codec.json(Message.Message))
  return { history, fanout, a: member(1), b: member(2) }
})

describe("RoomFanout", () => {
  it.effect("a release decided before a join runs after it: the room keeps its new member and its lines", () =>
    Effect.gen(function*() {
      const { a, b, fanout, history } = yield* setup
      const room = yield* fanout.join("#x", a.session, undefined)
      // a leaves: the release is made now, and runs only after b has joined.
      room.members.delete(a.session)
      const release = fanout.release(room)
      const joined = yield* fanout.join("#x", b.session, undefined)
      yield* release
      assert.strictEqual(fanout.get("#x"), joined, "the room b is in is still this node's")
      yield* history.publish("#x", () => "line")
      assert.strictEqual(b.sent.length, 1, "b got the line")
      assert.strictEqual(a.sent.length, 0)
    }).pipe(Effect.scoped))

  it.effect("a room released and made again delivers to its members (each subscription its own)", () =>
    Effect.gen(function*() {
      const { a, b, fanout, history } = yield* setup
      const first = yield* fanout.join("#x", a.session, undefined)
      first.members.delete(a.session)
      yield* fanout.release(first)
      const second = yield* fanout.join("#x", b.session, undefined)
      assert.notStrictEqual(second, first)
      yield* history.publish("#x", () => "line")
      assert.strictEqual(b.sent.length, 1)
    }).pipe(Effect.scoped))
})
