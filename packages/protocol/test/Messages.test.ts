/**
 * The message framing (WebSockets): a received message is one frame, never
 * split or joined; a batch goes out as one buffer per payload.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Wire from "@tether/protocol/Wire"

const utf8 = (text: string) => new TextEncoder().encode(text)

describe("Frame.messages", () => {
  it("takes each pushed chunk as one whole frame, whatever it holds", () => {
    const decoder = Frame.messages().decoder()
    const frames = decoder.push(utf8("a\nb\u0000c"))
    assert.deepStrictEqual(frames, [utf8("a\nb\u0000c")])
    assert.deepStrictEqual(decoder.push(new Uint8Array(0)), [new Uint8Array(0)])
    assert.isUndefined(decoder.end())
  })

  it("fails a message over the limit with FrameTooLarge, and keeps failing", () => {
    const decoder = Frame.messages({ maxFrameBytes: 4 }).textDecoder!()
    assert.deepStrictEqual(decoder.push(utf8("1234")), ["1234"])
    const error = decoder.push(utf8("12345"))
    assert.instanceOf(error, Frame.FrameError)
    assert.strictEqual((error as Frame.FrameError).reason, "FrameTooLarge")
    assert.strictEqual((error as Frame.FrameError).size, 5)
    assert.strictEqual(decoder.push(utf8("1")), error)
    assert.strictEqual(decoder.end(), error)
  })

  it("rejects invalid UTF-8 in a text message", () => {
    const error = Frame.messages().textDecoder!().push(new Uint8Array([0x7b, 0xff, 0x7d]))
    assert.instanceOf(error, Frame.FrameError)
    assert.strictEqual((error as Frame.FrameError).reason, "InvalidUtf8")
  })

  it("refuses to join payloads in encodeAll (that would merge messages)", () => {
    const framing = Frame.messages()
    assert.deepStrictEqual(framing.encodeAll([utf8("x")]), utf8("x"))
    assert.throws(() => framing.encodeAll([utf8("x"), utf8("y")]))
  })
})

describe("Wire over Frame.messages", () => {
  const wire = Wire.make(Frame.messages({ maxFrameBytes: 64 }), Codec.json(Message.Message))

  it("frames a batch as one buffer per payload, strings and bytes alike, never joined", () => {
    const ack = wire.encode({ _tag: "Ack", id: 1 }) as Uint8Array
    const batch = wire.frame([ack, "{\"_tag\":\"Ack\",\"id\":2}", ack], false)
    assert.isTrue(Array.isArray(batch))
    const texts = (batch as Array<Uint8Array>).map((b) => new TextDecoder().decode(b))
    assert.deepStrictEqual(texts, ["{\"_tag\":\"Ack\",\"id\":1}", "{\"_tag\":\"Ack\",\"id\":2}", "{\"_tag\":\"Ack\",\"id\":1}"])
  })

  it("fails a payload over the limit with FrameTooLarge", () => {
    const batch = wire.frame([utf8("x".repeat(65))], false)
    assert.instanceOf(batch, Frame.FrameError)
  })

  it("decodes one message per pushed chunk, a chunk holding two JSON texts being garbage", () => {
    const parser = wire.parser()
    const out: Array<Message.Message> = []
    assert.isUndefined(parser.push(utf8("{\"_tag\":\"Who\"}"), out))
    assert.deepStrictEqual(out, [{ _tag: "Who" }])
    const error = parser.push(utf8("{\"_tag\":\"Who\"}{\"_tag\":\"Who\"}"), out)
    assert.strictEqual(error?._tag, "DecodeError")
  })
})
