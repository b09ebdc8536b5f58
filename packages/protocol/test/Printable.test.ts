import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Message from "@tether/protocol/Message"
import * as Printable from "@tether/protocol/Printable"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"

// Everything a terminal or a log reader could act on.
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/
const text = (s: string) => new TextEncoder().encode(s)

describe("Printable.escape", () => {
  it("escapes ESC, CSI, OSC 52, C1, carriage return, new line and bidi overrides", () => {
    const hostile = "a\u001b[2Jb\u001b]52;c;aGk=\u0007c\u009b31md\r\nfake line\u202eevil\u2028x\u2066y"
    const out = Printable.escape(hostile)
    assert.notMatch(out, unsafe)
    assert.strictEqual(
      out,
      "a\\x1b[2Jb\\x1b]52;c;aGk=\\x07c\\x9b31md\\x0d\\x0afake line\\u{202e}evil\\u{2028}x\\u{2066}y"
    )
  })

  it.prop("nothing unsafe survives; printable text is unchanged", [FastCheck.fullUnicodeString({ maxLength: 64 })], ([s]) => {
    const out = Printable.escape(s)
    assert.notMatch(out, unsafe)
    assert.strictEqual(out === s, Printable.isPrintable(s))
    // emoji, accents, zero-width joiners in text are kept as they are
    assert.strictEqual(Printable.escape("héllo 👩‍👩‍👧"), "héllo 👩‍👩‍👧")
  })

  it.prop("forLog is bounded and escaped whatever the input", [
    FastCheck.fullUnicodeString({ maxLength: 600 }),
    FastCheck.integer({ min: 1, max: 300 })
  ], ([s, max]) => {
    const out = Printable.forLog(s, max)
    assert.notMatch(out, unsafe)
    // each kept character escapes to at most 8 characters, plus the note of what was cut
    assert.isAtMost(out.length, max * 8 + 24)
    if (s.length > max) assert.match(out, /\.\.\.\(\+\d+ chars\)$/)
  })

  it("bounded never splits a surrogate pair", () => {
    assert.strictEqual(Printable.bounded("ab😀cd", 3), "ab...(+4 chars)")
    assert.strictEqual(Printable.bounded("abc", 3), "abc")
  })
})

describe("user names", () => {
  const invisible = [
    "bob\u200b", // zero-width space
    "b\u200dob", // zero-width joiner
    "\ufeffbob", // BOM
    "bo\u00adb", // soft hyphen
    "a\u202eb", // right-to-left override
    "a\u2067b", // isolate
    "a\u200fb", // right-to-left mark
    "a\u2028b", // line separator
    "a\u2029b", // paragraph separator
    "a\u0085b", // C1 next line
    "a\u009bb", // C1 CSI
    "a\u001bb", // ESC
    "a\u007fb", // DEL
    "a\u3164b", // Hangul filler
    "a\ufe0fb", // variation selector
    "a\u{e0041}b" // tag character
  ]
  it("names with control, bidi, separator or invisible characters are refused", () => {
    for (const name of invisible) {
      assert.isDefined(Printable.nameProblem(name), JSON.stringify(name))
      const decoded = Codec.json(Message.Message).decode(text(JSON.stringify({ _tag: "Login", user: name, password: "pw" })))
      assert.instanceOf(decoded, Codec.DecodeError, JSON.stringify(name))
    }
  })

  it("names must be NFKC: fullwidth and ligature forms are refused, their normal forms accepted", () => {
    for (const [raw, normal] of [["ｂｏｂ", "bob"], ["ﬁona", "fiona"], ["e\u0301ve", "\u00e9ve"]] as const) {
      assert.isDefined(Printable.nameProblem(raw))
      assert.strictEqual(Printable.normalizeName(raw), normal)
      assert.isUndefined(Printable.nameProblem(normal))
    }
    for (const name of ["alice", "Zoë", "日本語", "o'brien", "__proto__", "a b"]) assert.isUndefined(Printable.nameProblem(name))
  })

  // The codec's compiled decoder and Schema's decoder agree on every name.
  const joined = Schema.decodeUnknownEither(Message.Joined)
  const codec = Codec.json(Message.Message)
  it.prop("the fast decoder and Schema agree on arbitrary names", [
    FastCheck.oneof(
      FastCheck.fullUnicodeString({ maxLength: 34 }),
      FastCheck.stringOf(FastCheck.constantFrom("a", "\u200b", "\u202e", "ｂ", "\u0085", "é", "e\u0301", "\u2028"), { maxLength: 6 })
    )
  ], ([name]) => {
    const value = { _tag: "Joined", user: name }
    const fast = codec.decode(text(JSON.stringify(value)))
    const slow = joined(value)
    if (Either.isRight(slow)) assert.deepStrictEqual(fast, slow.right)
    else assert.instanceOf(fast, Codec.DecodeError)
    assert.strictEqual(Either.isRight(slow), Printable.nameProblem(name) === undefined && name.length >= 1 && name.length <= 32)
  })
})

describe("decode errors are bounded", () => {
  it("a 1 MiB bad Login gives a short, escaped error naming the tag, the field and the first bytes", () => {
    const huge = "\u001b[2J\nFAKE " + "a".repeat(1024 * 1024)
    const login = { _tag: "Login", user: huge, password: "pw" } as Message.Message
    const cases = [
      [Codec.json(Message.Message), text(JSON.stringify(login))],
      [Codec.msgpack(Message.Message), Codec.msgpack(Message.Message, { trustedEncode: true }).encode(login) as Uint8Array]
    ] as const
    for (const [codec, frame] of cases) {
      const error = codec.decode(frame)
      assert.instanceOf(error, Codec.DecodeError)
      const message = (error as Codec.DecodeError).message
      assert.isAtMost(message.length, 600, message)
      assert.notMatch(message, unsafe)
      assert.include(message, "\"Login\" at [user]")
      assert.strictEqual((error as Codec.DecodeError).reason, "InvalidMessage")
      assert.isDefined((error as Codec.DecodeError).head)
    }
    const notJson = Codec.json(Message.Message).decode(text("\u001b]0;title\u0007" + "x".repeat(1 << 20)))
    assert.strictEqual((notJson as Codec.DecodeError).reason, "InvalidJson")
    assert.isAtMost((notJson as Codec.DecodeError).message.length, 600)
    assert.notMatch((notJson as Codec.DecodeError).message, unsafe)
  })
})
