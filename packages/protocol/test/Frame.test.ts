import { assert, describe, it } from "@effect/vitest"
import * as Frame from "@tether/protocol/Frame"
import * as FastCheck from "effect/FastCheck"
import { cuts, decodeSplit, encodeAll, payloads } from "./fixtures/frames.js"

const lengthFramings: ReadonlyArray<[string, Frame.Framing]> = [
  ["u32be (default)", Frame.lengthPrefixed()],
  ["u16le", Frame.lengthPrefixed({ lengthBytes: 2, byteOrder: "little" })],
  ["u8", Frame.lengthPrefixed({ lengthBytes: 1, maxFrameBytes: 255 })]
]

describe("length-prefixed", () => {
  for (const [name, framing] of lengthFramings) {
    it.prop(`${name}: any split of the stream yields the same frames`, [payloads, cuts], ([ps, cs]) => {
      const fitting = ps.map((p) => p.subarray(0, framing.maxFrameBytes))
      const stream = encodeAll(framing, fitting)
      const whole = decodeSplit(framing, stream, [])
      const split = decodeSplit(framing, stream, cs)
      assert.isUndefined(split.error)
      assert.deepStrictEqual(split.frames, fitting)
      assert.deepStrictEqual(split.frames, whole.frames)
    })
  }

  // Transports pass a non-zeroed allocator (Buffer.allocUnsafe): every byte must be written.
  const dirty = (size: number) => new Uint8Array(size).fill(0xa5)
  for (const [name, framing] of [...lengthFramings, ["lines", Frame.lines()] as const]) {
    it.prop(`${name}: encodeAll into a dirty buffer gives the same bytes`, [payloads], ([ps]) => {
      const fitting = ps.map((p) => p.subarray(0, framing.maxFrameBytes).map((x) => (x === 0x0a ? 0x20 : x)))
      assert.deepStrictEqual(framing.encodeAll(fitting, dirty), encodeAll(framing, fitting))
    })
  }

  const mixed = FastCheck.array(
    FastCheck.oneof(
      FastCheck.uint8Array({ maxLength: 64 }),
      FastCheck.integer({ min: Frame.gatherThreshold, max: 3 * Frame.gatherThreshold }).map((n) => new Uint8Array(n).fill(n & 0xff))
    ),
    { maxLength: 12 }
  )
  // Large payloads as views of a received stream (their length field just
  // before them in memory), or of a buffer where the bytes before them are
  // something else.
  const viewed = FastCheck.tuple(mixed, FastCheck.array(FastCheck.boolean(), { maxLength: 12 }), FastCheck.boolean()).map(([ps, asViews, spoil]) => {
    const framing = Frame.lengthPrefixed()
    const stream = encodeAll(framing, ps)
    let at = 0
    return ps.map((p, i) => {
      const start = at + 4
      at = start + p.length
      if (!asViews[i]) return p
      if (spoil) stream[start - 1] ^= 0xff // the bytes before the view are no longer its length
      return stream.subarray(start, start + p.length)
    })
  })
  it.prop("encodeChunks: the chunks concatenate to encodeAll's bytes, large payloads by reference", [FastCheck.oneof(mixed, viewed)], ([ps]) => {
    const framing = Frame.lengthPrefixed()
    const chunks = framing.encodeChunks!(ps, dirty)
    if (chunks instanceof Frame.FrameError) throw chunks
    const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
    let at = 0
    for (const c of chunks) {
      joined.set(c, at)
      at += c.length
    }
    assert.deepStrictEqual(joined, encodeAll(framing, ps))
    for (const p of ps) {
      if (p.length >= Frame.gatherThreshold) {
        assert.isTrue(chunks.some((c) => c.buffer === p.buffer && c.byteOffset + c.length === p.byteOffset + p.length), "a large payload is not copied")
      }
    }
  })

  it("encodeChunks refuses a payload over the limit with FrameTooLarge", () => {
    const framing = Frame.lengthPrefixed({ maxFrameBytes: Frame.gatherThreshold })
    const error = framing.encodeChunks!([new Uint8Array(3), new Uint8Array(Frame.gatherThreshold + 1)])
    assert.instanceOf(error, Frame.FrameError)
    assert.strictEqual((error as Frame.FrameError).reason, "FrameTooLarge")
  })

  it("u32be writes the length big-endian, byte by byte", () => {
    const bytes = encodeAll(Frame.lengthPrefixed(), [new Uint8Array(0x1_2c), new Uint8Array(3).fill(9)])
    assert.deepStrictEqual(Array.from(bytes.subarray(0, 4)), [0, 0, 1, 0x2c])
    assert.deepStrictEqual(Array.from(bytes.subarray(304)), [0, 0, 0, 3, 9, 9, 9])
  })

  it.prop("garbage gives frames or a typed FrameError, never a throw", [FastCheck.uint8Array({ maxLength: 2000 }), cuts], ([bytes, cs]) => {
    for (const [, framing] of lengthFramings) {
      const { error } = decodeSplit(framing, bytes, cs)
      if (error !== undefined) assert.instanceOf(error, Frame.FrameError)
    }
  })

  it.prop("pushInto gives push's frames and errors under any split (garbage included)", [
    FastCheck.oneof(payloads.map((ps) => encodeAll(Frame.lengthPrefixed(), ps)), FastCheck.uint8Array({ maxLength: 2000 })),
    cuts
  ], ([bytes, cs]) => {
    for (const [, framing] of [...lengthFramings, ["classic", Frame.classic()] as const]) {
      const decoder = framing.decoder()
      assert.isDefined(decoder.pushInto, `${framing.name} has pushInto`)
      const expected = decodeSplit(framing, bytes, cs)
      const points = [...new Set(cs.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
      const frames: Array<Uint8Array> = []
      let error: Frame.FrameError | undefined
      let from = 0
      for (const to of [...points, bytes.length]) {
        const before = frames.length
        error = decoder.pushInto!(bytes.subarray(from, to), frames)
        for (let i = before; i < frames.length; i++) frames[i] = Uint8Array.from(frames[i]!)
        if (error !== undefined) break
        from = to
      }
      error ??= decoder.end()
      // push drops the frames a failing chunk completed before its error; pushInto keeps them.
      assert.deepStrictEqual(frames.slice(0, expected.frames.length), expected.frames)
      assert.deepStrictEqual(error, expected.error)
      if (error === undefined) assert.strictEqual(frames.length, expected.frames.length)
    }
  })

  it("a 4 GiB declared length fails FrameTooLarge after the 4 header bytes", () => {
    const decoder = Frame.lengthPrefixed().decoder()
    const result = decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]))
    assert.instanceOf(result, Frame.FrameError)
    if (result instanceof Frame.FrameError) {
      assert.strictEqual(result.reason, "FrameTooLarge")
      assert.strictEqual(result.size, 0xffff_ffff)
      assert.strictEqual(result.limit, 1024 * 1024)
    }
    assert.strictEqual(decoder.buffered(), 4, "nothing past the header was buffered or allocated")
    // After an error the decoder keeps returning it.
    assert.strictEqual(decoder.push(new Uint8Array([1, 2, 3])), result)
    assert.strictEqual(decoder.end(), result)
  })

  it("one byte over the limit fails; exactly the limit passes", () => {
    const framing = Frame.lengthPrefixed({ maxFrameBytes: 10 })
    const ok = framing.decoder().push(encodeAll(framing, [new Uint8Array(10)]))
    assert.deepStrictEqual(ok, [new Uint8Array(10)])
    const tooBig = framing.decoder().push(new Uint8Array([0, 0, 0, 11]))
    assert.instanceOf(tooBig, Frame.FrameError)
    assert.instanceOf(framing.encode(new Uint8Array(11)), Frame.FrameError)
  })

  it("a header split at every byte position", () => {
    const framing = Frame.lengthPrefixed()
    const stream = encodeAll(framing, [new Uint8Array([1, 2, 3]), new Uint8Array([4])])
    for (let cut = 0; cut <= stream.length; cut++) {
      const { error, frames } = decodeSplit(framing, stream, [cut])
      assert.isUndefined(error)
      assert.deepStrictEqual(frames, [new Uint8Array([1, 2, 3]), new Uint8Array([4])])
    }
    // And one byte at a time.
    const decoder = framing.decoder()
    const frames: Array<Uint8Array> = []
    for (const byte of stream) frames.push(...(decoder.push(new Uint8Array([byte])) as Array<Uint8Array>))
    assert.strictEqual(frames.length, 2)
  })

  it("an empty payload is a frame", () => {
    const framing = Frame.lengthPrefixed()
    assert.deepStrictEqual(framing.decoder().push(new Uint8Array([0, 0, 0, 0])), [new Uint8Array(0)])
    assert.deepStrictEqual(framing.encode(new Uint8Array(0)), new Uint8Array([0, 0, 0, 0]))
  })

  it("a stream that ends inside a frame is Truncated", () => {
    const decoder = Frame.lengthPrefixed().decoder()
    assert.deepStrictEqual(decoder.push(new Uint8Array([0, 0, 0, 5, 1, 2])), [])
    const error = decoder.end()
    assert.instanceOf(error, Frame.FrameError)
    assert.strictEqual(error?.reason, "Truncated")
    assert.strictEqual(error?.size, 6)
    assert.isUndefined(Frame.lengthPrefixed().decoder().end(), "an empty stream ends cleanly")
  })

  it("decoding is linear: a 4 MiB frame pushed in 1-byte-header + 4 KiB chunks", () => {
    const framing = Frame.lengthPrefixed({ maxFrameBytes: 8 * 1024 * 1024 })
    const payload = new Uint8Array(4 * 1024 * 1024).map((_, i) => i & 0xff)
    const stream = encodeAll(framing, [payload])
    const decoder = framing.decoder()
    const frames: Array<Uint8Array> = []
    for (let at = 0; at < stream.length; at += 4096) {
      frames.push(...(decoder.push(stream.subarray(at, at + 4096)) as Array<Uint8Array>))
    }
    assert.strictEqual(frames.length, 1)
    assert.deepStrictEqual(frames[0], payload)
  })
})

describe("classic", () => {
  const framing = Frame.classic()
  const packetOf = (body: number) => {
    const size = 16 + body
    const bytes = new Uint8Array(size)
    bytes[0] = size & 0xff
    bytes[1] = size >> 8
    return bytes
  }

  it.prop("any split yields the same packets", [FastCheck.array(FastCheck.integer({ min: 0, max: 2000 }), { maxLength: 10 }), cuts], ([bodies, cs]) => {
    const packets = bodies.map(packetOf)
    const stream = encodeAll(framing, packets)
    const split = decodeSplit(framing, stream, cs)
    assert.isUndefined(split.error)
    assert.deepStrictEqual(split.frames, packets)
  })

  it.prop("garbage gives packets or a typed FrameError, never a throw", [FastCheck.uint8Array({ maxLength: 2000 }), cuts], ([bytes, cs]) => {
    const { error } = decodeSplit(framing, bytes, cs)
    if (error !== undefined) assert.instanceOf(error, Frame.FrameError)
  })

  it("a PktSize under 16 is Malformed", () => {
    const result = framing.decoder().push(new Uint8Array([15, 0]))
    assert.instanceOf(result, Frame.FrameError)
    if (result instanceof Frame.FrameError) assert.strictEqual(result.reason, "Malformed")
  })

  it("a PktSize over a lower limit fails at once, after 2 bytes", () => {
    const result = Frame.classic({ maxPacketBytes: 1024 }).decoder().push(new Uint8Array([0xff, 0xff]))
    assert.instanceOf(result, Frame.FrameError)
    if (result instanceof Frame.FrameError) {
      assert.strictEqual(result.reason, "FrameTooLarge")
      assert.strictEqual(result.size, 65535)
    }
  })

  it("a packet cut short at end of stream is Truncated", () => {
    const decoder = framing.decoder()
    decoder.push(packetOf(10).subarray(0, 20))
    assert.strictEqual(decoder.end()?.reason, "Truncated")
  })
})
