import { assert, describe, it } from "@effect/vitest"
import * as Frame from "@tether/protocol/Frame"
import * as FastCheck from "effect/FastCheck"
import { concat, cuts, decodeSplit, encodeAll, lineBytes, pushSplit } from "./fixtures/frames.js"

describe("lines", () => {
  const framing = Frame.lines({ maxLineBytes: 256 })

  it.prop("any split of the stream yields the same lines", [FastCheck.array(lineBytes, { maxLength: 20 }), cuts], ([ls, cs]) => {
    const stream = encodeAll(framing, ls)
    const split = decodeSplit(framing, stream, cs)
    assert.isUndefined(split.error)
    assert.deepStrictEqual(split.frames, ls)
  })

  it.prop("CRLF terminators are tolerated under any split", [FastCheck.array(lineBytes, { maxLength: 10 }), cuts], ([ls, cs]) => {
    const stream = concat(ls.flatMap((l) => [l, new Uint8Array([0x0d, 0x0a])]))
    const split = decodeSplit(framing, stream, cs)
    assert.isUndefined(split.error)
    assert.deepStrictEqual(split.frames, ls)
  })

  it.prop("garbage gives lines or a typed FrameError, never a throw", [FastCheck.uint8Array({ maxLength: 2000 }), cuts], ([bytes, cs]) => {
    const { error } = decodeSplit(framing, bytes, cs)
    if (error !== undefined) assert.instanceOf(error, Frame.FrameError)
  })

  it("an empty line is a frame", () => {
    assert.deepStrictEqual(framing.decoder().push(new TextEncoder().encode("\n\r\n")), [new Uint8Array(0), new Uint8Array(0)])
  })

  it("a line longer than maxLineBytes fails at once, before its newline arrives", () => {
    const decoder = framing.decoder()
    assert.deepStrictEqual(decoder.push(new Uint8Array(200).fill(0x61)), [])
    const result = decoder.push(new Uint8Array(57).fill(0x61))
    assert.instanceOf(result, Frame.FrameError)
    if (result instanceof Frame.FrameError) assert.strictEqual(result.reason, "FrameTooLarge")
  })

  it("a final line without a newline is Truncated", () => {
    const decoder = framing.decoder()
    decoder.push(new TextEncoder().encode("hello\nwor"))
    assert.strictEqual(decoder.end()?.reason, "Truncated")
  })

  it("refuses to encode a payload holding a newline", () => {
    assert.instanceOf(framing.encode(new TextEncoder().encode("a\nb")), Frame.FrameError)
    const text = framing.encodeTexts!(["ok", "a\nb"])
    assert.instanceOf(text, Frame.FrameError)
    assert.strictEqual((text as Frame.FrameError).reason, "Malformed")
  })

  const texts = FastCheck.array(FastCheck.string({ unit: "binary" }).map((t) => t.replace(/\n/g, "")), { maxLength: 20 })
  it.prop("encodeTexts gives the bytes of encodeAll over the texts' UTF-8", [texts], ([ts]) => {
    const utf8 = new TextEncoder()
    assert.deepStrictEqual(framing.encodeTexts!(ts), framing.encodeAll(ts.map((t) => utf8.encode(t))))
  })

  it("encodeTexts counts the limit in UTF-8 bytes, not characters", () => {
    const small = Frame.lines({ maxLineBytes: 12 })
    assert.notInstanceOf(small.encodeTexts!(["\u00e9".repeat(6)]), Frame.FrameError, "6 characters, 12 bytes")
    const over = small.encodeTexts!(["\u00e9".repeat(6) + "x"])
    assert.instanceOf(over, Frame.FrameError)
    assert.deepInclude(over as Frame.FrameError, { reason: "FrameTooLarge", size: 13, limit: 12 })
    assert.notInstanceOf(small.encodeTexts!(["x".repeat(12)]), Frame.FrameError)
    assert.instanceOf(small.encodeTexts!(["x".repeat(13)]), Frame.FrameError)
  })
})

describe("lines, decoded as text", () => {
  const framing = Frame.lines({ maxLineBytes: 256 })
  const utf8 = new TextEncoder()
  const valid = new TextDecoder("utf-8", { fatal: true })

  /** Like decodeSplit, through the text decoder. */
  const decodeTextSplit = (stream: Uint8Array, cuts: ReadonlyArray<number>) =>
    pushSplit(framing.textDecoder!(), stream, cuts, (line) => line)
  const isUtf8 = (bytes: Uint8Array) => {
    try {
      valid.decode(bytes)
      return true
    } catch {
      return false
    }
  }

  // Any characters, multi-byte ones included, so that chunks split them.
  const text = FastCheck.string({ unit: "binary", maxLength: 40 }).map((t) => t.replace(/\n/g, ""))
  it.prop("valid UTF-8 under any split: the byte decoder's lines, as text, and the same errors", [
    FastCheck.array(text, { maxLength: 12 }),
    FastCheck.boolean(),
    FastCheck.boolean(),
    cuts
  ], ([ts, crlf, cutShort, cs]) => {
    const whole = utf8.encode(ts.map((t) => t + (crlf ? "\r\n" : "\n")).join(""))
    // sometimes end inside the last line, or inside a multi-byte character
    const stream = cutShort && whole.length > 0 ? whole.subarray(0, whole.length - 1) : whole
    const bytes = decodeSplit(framing, stream, cs)
    const texts = decodeTextSplit(stream, cs)
    if (bytes.error === undefined) {
      assert.isUndefined(texts.error)
      assert.deepStrictEqual(texts.frames, bytes.frames.map((f) => valid.decode(f)))
    } else {
      assert.strictEqual(texts.error?.reason, bytes.error.reason)
    }
  })

  it.prop("garbage: the byte decoder's lines as text when it is UTF-8, else a typed FrameError; never a throw", [
    FastCheck.uint8Array({ maxLength: 2000 }),
    cuts
  ], ([stream, cs]) => {
    const texts = decodeTextSplit(stream, cs)
    if (isUtf8(stream)) {
      const bytes = decodeSplit(framing, stream, cs)
      assert.deepStrictEqual(texts.frames, bytes.frames.map((f) => valid.decode(f)))
      assert.strictEqual(texts.error?.reason, bytes.error?.reason)
    } else {
      assert.instanceOf(texts.error, Frame.FrameError)
    }
  })

  it("counts the line limit in UTF-8 bytes, and fails before the newline arrives", () => {
    const small = Frame.lines({ maxLineBytes: 12 })
    assert.deepStrictEqual(small.textDecoder!().push(utf8.encode("\u00e9".repeat(6) + "\n")), ["\u00e9".repeat(6)])
    const over = small.textDecoder!().push(utf8.encode("\u00e9".repeat(6) + "x\n"))
    assert.deepInclude(over as Frame.FrameError, { reason: "FrameTooLarge", size: 13 })
    const early = small.textDecoder!()
    assert.deepStrictEqual(early.push(utf8.encode("\u00e9".repeat(6))), [])
    assert.deepInclude(early.push(utf8.encode("\u00e9")) as Frame.FrameError, { reason: "FrameTooLarge", size: 14 })
    // a CR that may begin a CRLF is not counted yet
    assert.deepStrictEqual(small.textDecoder!().push(utf8.encode("x".repeat(12) + "\r")), [])
  })

  it("a long line in many small chunks: every chunk searched once, the line whole", () => {
    const decoder = Frame.lines().textDecoder!()
    const piece = utf8.encode("\u00e9".repeat(512)) // 1 KiB, two bytes per character
    for (let i = 0; i < 500; i++) assert.deepStrictEqual(decoder.push(piece), [])
    const lines = decoder.push(utf8.encode("\n"))
    assert.strictEqual((lines as ReadonlyArray<string>).length, 1)
    assert.strictEqual((lines as ReadonlyArray<string>)[0], "\u00e9".repeat(512 * 500))
  })

  it("invalid UTF-8 is InvalidUtf8, and the decoder keeps returning it", () => {
    const decoder = framing.textDecoder!()
    const error = decoder.push(new Uint8Array([0x61, 0xff, 0x0a]))
    assert.deepInclude(error as Frame.FrameError, { reason: "InvalidUtf8" })
    assert.strictEqual(decoder.push(utf8.encode("ok\n")), error)
  })
})
