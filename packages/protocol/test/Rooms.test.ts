import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Message from "@tether/protocol/Message"
import * as Rooms from "@tether/protocol/Rooms"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as FastDecode from "../src/internal/fastDecode.js"

const text = (s: string) => new TextEncoder().encode(s)
const json = Codec.json(Message.Message)
const decode = (value: unknown) => json.decode(text(JSON.stringify(value)))

describe("rooms and resume messages", () => {
  it("every member of the union compiles to the fast decoder (no member falls back to Schema)", () => {
    const ast = Message.Message.ast as SchemaAST.Union
    for (const member of ast.types) {
      assert.isDefined(FastDecode.compile(member), String(member))
    }
  })

  it("messages of before rooms still decode, meaning #lobby", () => {
    const old: ReadonlyArray<unknown> = [
      { _tag: "Login", user: "alice", password: "pw" },
      { _tag: "Say", id: 1, text: "hi" },
      { _tag: "Ack", id: 1 },
      { _tag: "Said", from: "bob", text: "hi", at: 0, seq: 1 },
      { _tag: "Joined", user: "bob" },
      { _tag: "Left", user: "bob", reason: "quit" },
      { _tag: "Who" },
      { _tag: "Present", users: ["alice", "bob"] }
    ]
    for (const message of old) assert.deepStrictEqual(decode(message) as unknown, message)
    assert.strictEqual(Message.defaultRoom, "#lobby")
    assert.isTrue(Schema.is(Message.RoomName)(Message.defaultRoom))
  })

  it("new fields decode and round-trip", () => {
    const messages: ReadonlyArray<Message.Message> = [
      Message.Login.make({
        user: "alice",
        password: "pw",
        resume: [{ room: "#lobby", epoch: "k3J_9-x", offset: 12 }, { room: "#ops", epoch: "e", offset: 0 }]
      }),
      Message.Say.make({ id: 7, text: "hi", room: "#ops" }),
      Message.Ack.make({ id: 7, room: "#ops", epoch: "e", offset: 13 }),
      Message.Said.make({ from: "bob", text: "hi", at: 5, seq: 13, room: "#ops", epoch: "e", offset: 13 }),
      Rooms.Join.make({ room: "#a-b_c" }),
      Rooms.Recovered.make({ room: "#ops", epoch: "e", offset: 20, replayed: 8 }),
      Rooms.Unrecoverable.make({ room: "#ops", reason: "TooOld", epoch: "e", offset: 2000 }),
      Rooms.SayRefused.make({ id: 9, code: "RateLimited", retryAfter: 500 }),
      Rooms.RoomRefused.make({ room: "#x", code: "TooManyRooms" })
    ]
    for (const message of messages) assert.deepStrictEqual(decode(message), message)
  })

  it("limits: room names, epochs, offsets and the resume array are checked by the Schemas", () => {
    const invalid = [
      { _tag: "Join", room: "lobby" },
      { _tag: "Join", room: "#" },
      { _tag: "Join", room: "#Lobby" },
      { _tag: "Join", room: "#a b" },
      { _tag: "Join", room: `#${"a".repeat(Message.maxRoomNameLength + 1)}` },
      { _tag: "Say", id: 1, text: "hi", room: "#lobby\n" },
      { _tag: "Said", from: "bob", text: "hi", at: 0, seq: 1, room: "#x", epoch: "e", offset: -1 },
      { _tag: "Said", from: "bob", text: "hi", at: 0, seq: 1, room: "#x", epoch: "e", offset: 1.5 },
      { _tag: "Said", from: "bob", text: "hi", at: 0, seq: 1, room: "#x", epoch: "", offset: 1 },
      { _tag: "Said", from: "bob", text: "hi", at: 0, seq: 1, room: "#x", epoch: "a".repeat(65), offset: 1 },
      { _tag: "Login", user: "alice", password: "pw", resume: [{ room: "#x", epoch: "e" }] },
      {
        _tag: "Login",
        user: "alice",
        password: "pw",
        resume: Array.from({ length: Message.maxResumePositions + 1 }, (_, i) => ({ room: `#r${i}`, epoch: "e", offset: 0 }))
      },
      { _tag: "RoomList", rooms: Array.from({ length: Message.maxRoomsPerSession + 1 }, (_, i) => `#r${i}`) },
      { _tag: "Unrecoverable", room: "#x", reason: "Lost", epoch: "e", offset: 0 },
      { _tag: "SayRefused", id: 1, code: "Busy" }
    ]
    for (const message of invalid) {
      const result = decode(message)
      assert.instanceOf(result, Codec.DecodeError, JSON.stringify(message).slice(0, 80))
      assert.strictEqual((result as Codec.DecodeError).reason, "InvalidMessage")
    }
    assert.notInstanceOf(decode({ _tag: "Join", room: `#${"a".repeat(Message.maxRoomNameLength)}` }), Codec.DecodeError)
    assert.notInstanceOf(
      decode({
        _tag: "Login",
        user: "alice",
        password: "pw",
        resume: Array.from({ length: Message.maxResumePositions }, (_, i) => ({ room: `#r${i}`, epoch: "e", offset: i }))
      }),
      Codec.DecodeError
    )
  })

  it("refusal codes say whether to keep the line queued", () => {
    assert.isTrue(Rooms.isRetryable("Unavailable"))
    assert.isTrue(Rooms.isRetryable("RateLimited"))
    assert.isFalse(Rooms.isRetryable("NotMember"))
  })

  it.prop("generated room names and epochs satisfy their Schemas", [
    Arbitrary.make(Message.RoomName),
    Arbitrary.make(Message.Epoch),
    Arbitrary.make(Message.ResumePosition)
  ], ([room, epoch, position]) => {
    assert.match(room, /^#[a-z0-9_-]{1,32}$/)
    assert.match(epoch, /^[A-Za-z0-9_-]{1,64}$/)
    assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Message.ResumePosition)(position)))
  })
})
