import { assert, describe, it } from "@effect/vitest"
import * as Classic from "@tether/protocol/Classic"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)))

/** The spec's example: a Login for mayee/mayee sent at Unix ms 1700000000000. */
const specLogin = hex(`
  34 00 01 00 00 00 00 00  00 68 e5 cf 8b 01 00 00
  24 00 65 00
  6d 61 79 65 65 00 00 00 00 00 00 00
  6d 61 79 65 65 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
`)

const packets = Arbitrary.make(Classic.Packet)

const header = (size: number, count: number) => {
  const bytes = new Uint8Array(16)
  new DataView(bytes.buffer).setUint16(0, size, true)
  bytes[2] = count
  return bytes
}

const expectDecodeError = (bytes: Uint8Array, reason: Codec.DecodeError["reason"]) => {
  const result = Classic.decodePacket(bytes)
  assert.instanceOf(result, Codec.DecodeError)
  if (result instanceof Codec.DecodeError) assert.strictEqual(result.reason, reason, result.message)
}

describe("classic packets", () => {
  it("the spec's Login example, byte for byte, both directions", () => {
    const encoded = Classic.encodePacket(Classic.packet(1_700_000_000_000, { _tag: "Login", username: "mayee", password: "mayee" }))
    assert.strictEqual(specLogin.length, 52)
    assert.deepStrictEqual(encoded, specLogin)
    assert.deepStrictEqual(Classic.decodePacket(specLogin), {
      seq: 0,
      sendTime: 1_700_000_000_000,
      messages: [{ _tag: "Login", username: "mayee", password: "mayee" }]
    })
  })

  it("the other messages have the spec's sizes and layouts", () => {
    const packet = Classic.packet(
      0,
      { _tag: "ClientDemo" },
      { _tag: "ServerDemo", addr: "127.0.0.1", port: 30001, remark: "server response: ok" },
      { _tag: "LoginResponse", status: 100 },
      { _tag: "HeartBeat" }
    )
    const bytes = Classic.encodePacket(packet) as Uint8Array
    assert.strictEqual(bytes.length, 16 + 4 + 41 + 8 + 4)
    const view = new DataView(bytes.buffer, bytes.byteOffset)
    assert.strictEqual(view.getUint16(0, true), bytes.length)
    assert.strictEqual(bytes[2], 4)
    // ServerDemo at 20: MsgSize 41, MsgType 100, pad, Addr(12), Port u16 LE, 2 pad, Remark(20)
    assert.strictEqual(view.getUint16(20, true), 41)
    assert.strictEqual(view.getUint16(22, true), 100)
    assert.strictEqual(bytes[24], 0)
    assert.strictEqual(new TextDecoder().decode(bytes.subarray(25, 34)), "127.0.0.1")
    assert.deepStrictEqual([...bytes.subarray(34, 37)], [0, 0, 0])
    assert.strictEqual(view.getUint16(37, true), 30001)
    assert.strictEqual(new TextDecoder().decode(bytes.subarray(41, 60)), "server response: ok")
    // LoginResponse at 61: MsgSize 8, MsgType 102, status, 3 pad
    assert.deepStrictEqual([...bytes.subarray(61, 69)], [8, 0, 102, 0, 100, 0, 0, 0])
    assert.deepStrictEqual(Classic.decodePacket(bytes), packet)
  })

  it("trailing zeros and spaces are trimmed on read", () => {
    const bytes = Uint8Array.from(specLogin)
    bytes.set(new TextEncoder().encode("mayee   "), 20)
    bytes.set(new TextEncoder().encode("pw  \u0000 "), 32)
    const decoded = Classic.decodePacket(bytes)
    assert.deepStrictEqual((decoded as Classic.Packet).messages[0], { _tag: "Login", username: "mayee", password: "pw" })
  })

  it.prop("packets of 1..N messages round-trip through framing and codec", [packets, FastCheck.array(FastCheck.nat(), { maxLength: 8 })], ([packet, cuts]) => {
    const bytes = Classic.encodePacket(packet)
    assert.instanceOf(bytes, Uint8Array)
    const framing = Frame.classic()
    const stream = framing.encodeAll([bytes as Uint8Array, bytes as Uint8Array]) as Uint8Array
    const decoder = framing.decoder()
    const out: Array<unknown> = []
    let from = 0
    for (const to of [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b).concat(stream.length)) {
      for (const f of decoder.push(stream.subarray(from, to)) as Array<Uint8Array>) out.push(Classic.codec.decode(f))
      from = to
    }
    assert.deepStrictEqual(out, [packet, packet])
  })

  it.prop("garbage bodies give a packet or a typed DecodeError, never a throw", [FastCheck.uint8Array({ maxLength: 200 }), FastCheck.integer({ min: 0, max: 255 })], ([body, count]) => {
    const bytes = new Uint8Array(16 + body.length)
    bytes.set(header(16 + body.length, count))
    bytes.set(body, 16)
    const result = Classic.decodePacket(bytes)
    if (result instanceof Error) assert.instanceOf(result, Codec.DecodeError)
  })

  it("an unknown MsgType is UnknownType", () => {
    const bytes = new Uint8Array(20)
    bytes.set(header(20, 1))
    bytes.set([4, 0, 42, 0], 16)
    expectDecodeError(bytes, "UnknownType")
  })

  it("a MsgSize that does not match its type is WrongSize", () => {
    const bytes = new Uint8Array(21)
    bytes.set(header(21, 1))
    bytes.set([5, 0, 110, 0], 16)
    expectDecodeError(bytes, "WrongSize")
  })

  it("a message running past the body is Malformed", () => {
    const bytes = new Uint8Array(16 + 20)
    bytes.set(header(36, 1))
    bytes.set([36, 0, 101, 0], 16) // a Login needs 36 bytes, only 20 are there
    expectDecodeError(bytes, "Malformed")
  })

  it("a MsgCount that does not match the body is Malformed", () => {
    const twoBeats = Classic.encodePacket(Classic.packet(0, { _tag: "HeartBeat" }, { _tag: "HeartBeat" })) as Uint8Array
    const claimsOne = Uint8Array.from(twoBeats)
    claimsOne[2] = 1
    expectDecodeError(claimsOne, "Malformed")
    const claimsThree = Uint8Array.from(twoBeats)
    claimsThree[2] = 3
    expectDecodeError(claimsThree, "Malformed")
    const none = header(16, 0)
    expectDecodeError(none, "Malformed")
  })

  it("strings that are not UTF-8 are InvalidField", () => {
    const bytes = Uint8Array.from(specLogin)
    bytes[20] = 0xff
    expectDecodeError(bytes, "InvalidField")
  })

  it("fields that do not fit the layout are refused on encode", () => {
    const tooLong = Classic.encodePacket(Classic.packet(0, { _tag: "Login", username: "a".repeat(13), password: "pw" }))
    assert.instanceOf(tooLong, Codec.EncodeError)
    const multiByte = Classic.encodePacket(Classic.packet(0, { _tag: "Login", username: "ééééééé", password: "pw" }))
    assert.instanceOf(multiByte, Codec.EncodeError, "7 characters but 14 UTF-8 bytes")
  })
})
