import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as FastCheck from "effect/FastCheck"

const codecs: ReadonlyArray<Codec.Codec<Message.Message>> = [
  Codec.json(Message.Message),
  Codec.msgpack(Message.Message),
  Codec.json(Message.Message, { trustedEncode: true }),
  Codec.msgpack(Message.Message, { trustedEncode: true })
]

const messages = Arbitrary.make(Message.Message)
const text = (s: string) => new TextEncoder().encode(s)

describe("Tether codecs", () => {
  for (const codec of codecs) {
    it.prop(`${codec.name}: every message round-trips`, [messages], ([message]) => {
      const payload = codec.encode(message)
      assert.instanceOf(payload, Uint8Array)
      assert.deepStrictEqual(codec.decode(payload as Uint8Array), message)
    })

    it.prop(`${codec.name}: garbage decodes to a message or a typed DecodeError, never a throw`, [
      FastCheck.uint8Array({ maxLength: 300 })
    ], ([bytes]) => {
      const result = codec.decode(bytes)
      if (result instanceof Error) assert.instanceOf(result, Codec.DecodeError)
    })
  }

  it.prop("json and length-prefixed framing compose over any split", [
    FastCheck.array(messages, { maxLength: 8 }),
    FastCheck.array(FastCheck.nat(), { maxLength: 10 })
  ], ([ms, cuts]) => {
    const codec = codecs[0]!
    const framing = Frame.lengthPrefixed()
    const stream = framing.encodeAll(ms.map((m) => codec.encode(m) as Uint8Array)) as Uint8Array
    const decoder = framing.decoder()
    const out: Array<Message.Message> = []
    let from = 0
    for (const to of [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b).concat(stream.length)) {
      for (const f of decoder.push(stream.subarray(from, to)) as Array<Uint8Array>) out.push(codec.decode(f) as Message.Message)
      from = to
    }
    assert.deepStrictEqual(out, ms)
  })

  // The codec decodes a tagged union by the member its _tag names; it must
  // agree with the union's own decoding on anything, valid or not.
  const unionDecode = Schema.decodeUnknownEither(Message.Message)
  const roomLike = FastCheck.oneof(
    FastCheck.stringMatching(/^#[a-z0-9_-]{1,32}$/),
    FastCheck.constantFrom("#lobby", "lobby", "#", "#Lobby", `#${"a".repeat(33)}`),
    FastCheck.string({ maxLength: 40 })
  )
  const offsetLike = FastCheck.oneof(FastCheck.nat(), FastCheck.integer(), FastCheck.double(), FastCheck.constant(2 ** 53))
  const messageLike = FastCheck.record({
    _tag: FastCheck.constantFrom(...Codec.tagsOf(Message.Message), "Nope"),
    id: FastCheck.oneof(FastCheck.nat(), FastCheck.integer(), FastCheck.string()),
    body: FastCheck.oneof(FastCheck.string(), FastCheck.nat()),
    seq: FastCheck.nat(),
    user: FastCheck.string({ maxLength: 40 }),
    password: FastCheck.string({ maxLength: 4 }),
    text: FastCheck.string(),
    status: FastCheck.constantFrom(0, 5, 100, 7),
    room: roomLike,
    rooms: FastCheck.array(roomLike, { maxLength: 34 }),
    epoch: FastCheck.oneof(FastCheck.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), FastCheck.string({ maxLength: 66 })),
    offset: offsetLike,
    replayed: offsetLike,
    reason: FastCheck.constantFrom("EpochChanged", "TooOld", "Gone", "bye"),
    code: FastCheck.constantFrom("Unavailable", "RateLimited", "NotMember", "TooManyRooms", "Other"),
    resume: FastCheck.array(
      FastCheck.record({ room: roomLike, epoch: FastCheck.constantFrom("e1", "", "a b"), offset: offsetLike, x: FastCheck.nat() }, {
        requiredKeys: []
      }),
      { maxLength: 34 }
    )
  }, { requiredKeys: ["_tag"] })
  it.prop("decoding by tag agrees with the union: same message, or a bounded InvalidMessage naming the tag", [messageLike], ([value]) => {
    const decoded = Codec.json(Message.Message).decode(text(JSON.stringify(value)))
    const expected = unionDecode(value)
    if (Either.isRight(expected)) {
      assert.deepStrictEqual(decoded, expected.right)
    } else {
      assert.instanceOf(decoded, Codec.DecodeError)
      const error = decoded as Codec.DecodeError
      if (error.reason === "InvalidMessage") {
        // A summary of the first failure of the member the tag names, never the union's description.
        assert.isTrue(error.detail.startsWith(JSON.stringify(value._tag)), error.detail)
        assert.isAtMost(error.detail.length, Codec.maxDetailChars + 32)
      } else {
        assert.strictEqual(error.reason, "UnknownType")
        assert.strictEqual(value._tag, "Nope")
      }
    }
  })

  // Every Schema codec decodes the shapes messages are made of through a
  // decoder compiled from the Schema's AST; it must agree with Schema's own.
  const Custom = Schema.Struct({
    a: Schema.optionalWith(Schema.String, { exact: true }),
    b: Schema.optional(Schema.Number.pipe(Schema.int())),
    c: Schema.Array(Schema.Literal("x", "y")),
    d: Schema.Boolean,
    e: Schema.Union(Schema.Literal(1), Schema.String.pipe(Schema.minLength(2))),
    toString: Schema.optionalWith(Schema.String, { exact: true })
  }).pipe(Schema.filter((value) => value.c.length < 3))
  const customDecode = Schema.decodeUnknownEither(Custom)
  const customLike = FastCheck.record({
    a: FastCheck.oneof(FastCheck.string(), FastCheck.integer()),
    b: FastCheck.oneof(FastCheck.integer(), FastCheck.double(), FastCheck.constant(null)),
    c: FastCheck.oneof(FastCheck.array(FastCheck.constantFrom("x", "y", "z"), { maxLength: 4 }), FastCheck.string()),
    d: FastCheck.oneof(FastCheck.boolean(), FastCheck.constant(null)),
    e: FastCheck.oneof(FastCheck.constant(1), FastCheck.constant(2), FastCheck.string({ maxLength: 3 })),
    toString: FastCheck.oneof(FastCheck.string(), FastCheck.constant(7)),
    extra: FastCheck.jsonValue({ maxDepth: 1 })
  }, { requiredKeys: [] })
  it.prop("a struct of optional, refined, array, union and filtered fields decodes as Schema decodes it", [
    FastCheck.oneof(customLike, FastCheck.jsonValue({ maxDepth: 2 }))
  ], ([value]) => {
    const decoded = Codec.json(Custom).decode(text(JSON.stringify(value)))
    const expected = customDecode(JSON.parse(JSON.stringify(value)))
    if (Either.isRight(expected)) assert.deepStrictEqual(decoded, expected.right)
    else assert.instanceOf(decoded, Codec.DecodeError)
  })

  it("decoding keeps only the declared keys, as Schema does", () => {
    const decoded = Codec.json(Message.Message).decode(text(`{"_tag":"Ping","seq":1,"extra":true,"__proto__":{"x":1}}`))
    assert.deepStrictEqual(decoded, { _tag: "Ping", seq: 1 })
    assert.deepStrictEqual(Object.keys(decoded as object), ["_tag", "seq"])
  })

  it("invalid JSON is InvalidJson", () => {
    const result = Codec.json(Message.Message).decode(text("{\"_tag\":"))
    assert.instanceOf(result, Codec.DecodeError)
    if (result instanceof Codec.DecodeError) assert.strictEqual(result.reason, "InvalidJson")
  })

  it("an unknown _tag (or none) is UnknownType", () => {
    const codec = Codec.json(Message.Message)
    for (const bytes of [text("{\"_tag\":\"Launch\"}"), text("{}"), text("42"), text("null")]) {
      const result = codec.decode(bytes)
      assert.instanceOf(result, Codec.DecodeError)
      if (result instanceof Codec.DecodeError) assert.strictEqual(result.reason, "UnknownType")
    }
  })

  it("field limits are enforced by the Schemas: InvalidMessage", () => {
    const codec = Codec.json(Message.Message)
    const invalid = [
      { _tag: "Login", user: "a".repeat(33), password: "pw" },
      { _tag: "Login", user: "", password: "pw" },
      { _tag: "Login", user: "alice", password: "" },
      { _tag: "Login", user: "al\u0000ice", password: "pw" },
      { _tag: "Say", id: 1, text: "x".repeat(16 * 1024 + 1) },
      { _tag: "Ping", seq: -1 },
      { _tag: "Ping", seq: 1.5 },
      { _tag: "Ping", seq: 2 ** 32 },
      { _tag: "Ping", seq: "1" },
      { _tag: "LoginResult", status: 7 }
    ]
    for (const message of invalid) {
      const result = codec.decode(text(JSON.stringify(message)))
      assert.instanceOf(result, Codec.DecodeError, JSON.stringify(message).slice(0, 60))
      if (result instanceof Codec.DecodeError) assert.strictEqual(result.reason, "InvalidMessage")
    }
    const fine = codec.decode(text(JSON.stringify({ _tag: "Say", id: 1, text: "x".repeat(16 * 1024) })))
    assert.notInstanceOf(fine, Codec.DecodeError)
    for (const seq of [0, 2 ** 31, 2 ** 32 - 1]) {
      assert.deepStrictEqual(codec.decode(text(JSON.stringify({ _tag: "Ping", seq }))), { _tag: "Ping", seq })
    }
    const tooBig = codec.decode(text(JSON.stringify({ _tag: "Ping", seq: 2 ** 32 })))
    assert.include((tooBig as Codec.DecodeError).detail, "Expected U32, actual 4294967296")
  })

  it("hostile nesting is InvalidMessage, never a stack overflow", () => {
    const codec = Codec.json(Message.Message)
    const nested = (depth: number) => `{"_tag":"Request","id":1,"body":${"[".repeat(depth)}${"]".repeat(depth)}}`
    assert.notInstanceOf(codec.decode(text(nested(Message.maxJsonDepth))), Codec.DecodeError)
    for (const depth of [Message.maxJsonDepth + 1, 100_000]) {
      const result = codec.decode(text(nested(depth)))
      assert.instanceOf(result, Codec.DecodeError)
      assert.strictEqual((result as Codec.DecodeError).reason, "InvalidMessage")
    }
    // A user Schema without a depth limit: the overflow is caught, typed.
    type Tree = ReadonlyArray<Tree>
    const Tree: Schema.Schema<Tree> = Schema.Array(Schema.suspend(() => Tree))
    const unbounded = Codec.json(Schema.Struct({ tree: Tree })).decode(text(`{"tree":${"[".repeat(100_000)}${"]".repeat(100_000)}}`))
    assert.instanceOf(unbounded, Codec.DecodeError)
  })

  it("Json bodies are plain JSON values: no binary, dates, NaN or Infinity", () => {
    const decode = Schema.decodeUnknownEither(Message.Json)
    for (const value of ["x", 1.5, -0, true, null, [1, [2, { a: null }]], { a: { b: ["c"] } }, Object.create(null)]) {
      assert.isTrue(Either.isRight(decode(value)), JSON.stringify(value))
    }
    for (const value of [new Uint8Array([1]), new Date(0), NaN, Infinity, undefined, 1n, [1, undefined], { a: () => 1 }]) {
      assert.isTrue(Either.isLeft(decode(value)), String(value))
    }
  })

  it("generated U32 values cover the whole unsigned range", () => {
    const values = FastCheck.sample(Arbitrary.make(Message.U32), 2000)
    assert.isTrue(values.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff))
    assert.isTrue(values.some((n) => n > 0x7fff_ffff), "values above 2^31 are generated")
  })

  it("encoding an invalid message is a typed EncodeError unless trusted", () => {
    const bad = { _tag: "Login", user: "", password: "pw" } as Message.Message
    assert.instanceOf(Codec.json(Message.Message).encode(bad), Codec.EncodeError)
    assert.instanceOf(Codec.json(Message.Message).encodeText!(bad), Codec.EncodeError)
    assert.instanceOf(Codec.msgpack(Message.Message).encode(bad), Codec.EncodeError)
    assert.typeOf(Codec.json(Message.Message, { trustedEncode: true }).encodeText!(bad), "string")
    // what JSON cannot write is an EncodeError too, never a throw
    const big = { _tag: "Request", id: 1, body: 1n as unknown as number } as Message.Message
    assert.instanceOf(Codec.json(Message.Message, { trustedEncode: true }).encode(big), Codec.EncodeError)
    assert.instanceOf(Codec.json(Message.Message, { trustedEncode: true }).encodeText!(big), Codec.EncodeError)
  })

  it.prop("json: decodeText of a frame's text is decode of its bytes, messages and errors alike", [
    FastCheck.oneof(messages.map((m) => JSON.stringify(m)), FastCheck.string({ unit: "binary", maxLength: 60 }), FastCheck.jsonValue().map((v) => JSON.stringify(v)))
  ], ([frame]) => {
    const codec = Codec.json(Message.Message)
    const fromText = codec.decodeText!(frame)
    const fromBytes = codec.decode(text(frame))
    if (fromBytes instanceof Codec.DecodeError) {
      assert.instanceOf(fromText, Codec.DecodeError)
      assert.strictEqual((fromText as Codec.DecodeError).reason, fromBytes.reason)
    } else {
      assert.deepStrictEqual(fromText, fromBytes)
    }
    assert.isUndefined(Codec.msgpack(Message.Message).decodeText)
  })

  it.prop("json: encodeText is the text whose UTF-8 is encode's payload; msgpack has no text", [messages], ([message]) => {
    const codec = Codec.json(Message.Message)
    assert.deepStrictEqual(text(codec.encodeText!(message) as string), codec.encode(message))
    assert.isUndefined(Codec.msgpack(Message.Message).encodeText)
  })

  it("msgpack: a payload is not changed by encoding the next message", () => {
    const codec = Codec.msgpack(Message.Message)
    const first = codec.encode({ _tag: "Say", id: 1, text: "first" }) as Uint8Array
    const copy = Uint8Array.from(first)
    codec.encode({ _tag: "Say", id: 2, text: "second message, longer" })
    assert.deepStrictEqual(first, copy)
  })

  it("the bytes codec is the identity", () => {
    const frame = new Uint8Array([1, 2, 3])
    assert.strictEqual(Codec.bytes.decode(frame), frame)
    assert.strictEqual(Codec.bytes.encode(frame), frame)
  })

  it("tagsOf lists the union's tags", () => {
    const tags = Codec.tagsOf(Message.Message)
    assert.isTrue(tags.has("Login"))
    assert.isTrue(tags.has("Failure"))
    assert.strictEqual(tags.size, Message.Message.members.length)
  })
})
