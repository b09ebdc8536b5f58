/**
 * The classic binary packet protocol of the Go heartbeat demo
 * (`protocols/classic-packet.md`), byte for byte: a 16-byte little-endian
 * header, then one or more fixed-layout messages. Use it with
 * `Frame.classic()` (which cuts the stream into packets) and {@link codec}.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import type * as Codec from "./Codec.js"
import { DecodeError, EncodeError } from "./Codec.js"
import { classicHeaderBytes, classicMaxPacketBytes } from "./Frame.js"

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * A fixed-size string field: at most `bytes` UTF-8 bytes, and (since readers
 * trim them) no trailing NUL or space.
 *
 * @since 0.1.0
 * @category fields
 */
export const FixedString = (bytes: number) =>
  Schema.String.pipe(
    Schema.maxLength(bytes),
    Schema.filter((s) => utf8Encoder.encode(s).length <= bytes || `at most ${bytes} UTF-8 bytes`),
    Schema.filter((s) => !/[\u0000 ]$/.test(s) || "no trailing NUL or space (readers trim them)"),
    Schema.annotations({ identifier: `FixedString(${bytes})` })
  )

/**
 * Message type numbers.
 *
 * @since 0.1.0
 * @category constants
 */
export const MsgType = {
  ClientDemo: 99,
  ServerDemo: 100,
  Login: 101,
  LoginResponse: 102,
  HeartBeat: 110
} as const

/**
 * Message sizes, meta header included.
 *
 * @since 0.1.0
 * @category constants
 */
export const MsgSize = {
  ClientDemo: 4,
  ServerDemo: 41,
  Login: 36,
  LoginResponse: 8,
  HeartBeat: 4
} as const

/**
 * @since 0.1.0
 * @category messages
 */
export const ClientDemo = Schema.TaggedStruct("ClientDemo", {})
/**
 * @since 0.1.0
 * @category messages
 */
export type ClientDemo = typeof ClientDemo.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const ServerDemo = Schema.TaggedStruct("ServerDemo", {
  addr: FixedString(12),
  port: Schema.Int.pipe(Schema.between(0, 0xffff)),
  remark: FixedString(20)
})
/**
 * @since 0.1.0
 * @category messages
 */
export type ServerDemo = typeof ServerDemo.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Login = Schema.TaggedStruct("Login", { username: FixedString(12), password: FixedString(20) })
/**
 * @since 0.1.0
 * @category messages
 */
export type Login = typeof Login.Type

/**
 * SessionStatus: 0 session active, 5 invalid credentials (or first message
 * not a Login), 100 user already connected. Any u8 is read as sent.
 *
 * @since 0.1.0
 * @category messages
 */
export const LoginResponse = Schema.TaggedStruct("LoginResponse", { status: Schema.Int.pipe(Schema.between(0, 255)) })
/**
 * @since 0.1.0
 * @category messages
 */
export type LoginResponse = typeof LoginResponse.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const HeartBeat = Schema.TaggedStruct("HeartBeat", {})
/**
 * @since 0.1.0
 * @category messages
 */
export type HeartBeat = typeof HeartBeat.Type

/**
 * @since 0.1.0
 * @category messages
 */
export const Message = Schema.Union(ClientDemo, ServerDemo, Login, LoginResponse, HeartBeat)
/**
 * @since 0.1.0
 * @category messages
 */
export type Message = typeof Message.Type

/**
 * A whole packet: its header fields and its messages (1 to 255).
 *
 * @since 0.1.0
 * @category messages
 */
export const Packet = Schema.Struct({
  seq: Schema.Int.pipe(Schema.between(0, 0xffff_ffff)),
  sendTime: Schema.Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER)),
  messages: Schema.NonEmptyArray(Message).pipe(Schema.maxItems(255))
})
/**
 * @since 0.1.0
 * @category messages
 */
export type Packet = typeof Packet.Type

const sizeOf = (message: Message): number => MsgSize[message._tag]

const writeString = (target: Uint8Array, at: number, value: string, size: number): void => {
  // Callers validated the byte length; encodeInto never writes past `size`.
  utf8Encoder.encodeInto(value, target.subarray(at, at + size))
}

const readString = (bytes: Uint8Array, at: number, size: number): string | undefined => {
  let end = at + size
  while (end > at && (bytes[end - 1] === 0 || bytes[end - 1] === 0x20)) end--
  try {
    return utf8Decoder.decode(bytes.subarray(at, end))
  } catch {
    return undefined
  }
}

const validatePacket = Schema.validateEither(Packet)

/**
 * Encodes a packet, byte for byte as the Go peers write it. Fails with an
 * `EncodeError` if a field does not fit its layout.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePacket = (packet: Packet): Uint8Array | Codec.EncodeError => {
  const valid = validatePacket(packet)
  if (valid._tag === "Left") return encodeError(String(valid.left.message))
  return unsafeEncodePacket(packet)
}


const encodeError = (detail: string) => new EncodeError({ codec: "classic", detail })

/**
 * Encodes a packet without validating it: for messages built from constants
 * and checked values on the hot path. Oversized packets are still refused.
 *
 * @since 0.1.0
 * @category encoding
 */
export const unsafeEncodePacket = (packet: Packet): Uint8Array | Codec.EncodeError => {
  let size = classicHeaderBytes
  for (const message of packet.messages) size += sizeOf(message)
  if (size > classicMaxPacketBytes) return encodeError(`packet of ${size} bytes exceeds ${classicMaxPacketBytes}`)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setUint16(0, size, true)
  view.setUint8(2, packet.messages.length)
  view.setUint32(4, packet.seq, true)
  view.setBigUint64(8, BigInt(packet.sendTime), true)
  let at = classicHeaderBytes
  for (const message of packet.messages) {
    const msgSize = sizeOf(message)
    view.setUint16(at, msgSize, true)
    view.setUint16(at + 2, MsgType[message._tag], true)
    switch (message._tag) {
      case "ServerDemo":
        writeString(out, at + 5, message.addr, 12)
        view.setUint16(at + 17, message.port, true)
        writeString(out, at + 21, message.remark, 20)
        break
      case "Login":
        writeString(out, at + 4, message.username, 12)
        writeString(out, at + 16, message.password, 20)
        break
      case "LoginResponse":
        view.setUint8(at + 4, message.status)
        break
      case "ClientDemo":
      case "HeartBeat":
        break
    }
    at += msgSize
  }
  return out
}

const fail = (reason: DecodeError["reason"], detail: string) => new DecodeError({ reason, codec: "classic", detail })

const typeNames: Record<number, Message["_tag"]> = {
  [MsgType.ClientDemo]: "ClientDemo",
  [MsgType.ServerDemo]: "ServerDemo",
  [MsgType.Login]: "Login",
  [MsgType.LoginResponse]: "LoginResponse",
  [MsgType.HeartBeat]: "HeartBeat"
}

/**
 * Decodes one whole packet (as cut by `Frame.classic()`). An unknown MsgType,
 * a MsgSize that does not match its type or runs past the body, a PktSize
 * that does not match the bytes, or a MsgCount that does not match the body
 * is a typed {@link DecodeError}.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodePacket = (bytes: Uint8Array): Packet | DecodeError => {
  if (bytes.length < classicHeaderBytes) return fail("Malformed", `packet of ${bytes.length} bytes is shorter than its header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const size = view.getUint16(0, true)
  if (size !== bytes.length) return fail("Malformed", `PktSize ${size} but ${bytes.length} bytes`)
  const count = view.getUint8(2)
  const seq = view.getUint32(4, true)
  const sendTime = Number(view.getBigUint64(8, true))
  if (count === 0) return fail("Malformed", "MsgCount is 0")
  const messages: Array<Message> = []
  let at = classicHeaderBytes
  for (let i = 0; i < count; i++) {
    if (at + 4 > size) return fail("Malformed", `message ${i + 1} of ${count} starts past the body`)
    const msgSize = view.getUint16(at, true)
    const msgType = view.getUint16(at + 2, true)
    const name = typeNames[msgType]
    if (name === undefined) return fail("UnknownType", `MsgType ${msgType}`)
    if (msgSize !== MsgSize[name]) return fail("WrongSize", `${name} with MsgSize ${msgSize}, expected ${MsgSize[name]}`)
    if (at + msgSize > size) return fail("Malformed", `${name} runs past the body`)
    switch (name) {
      case "ServerDemo": {
        const addr = readString(bytes, at + 5, 12)
        const remark = readString(bytes, at + 21, 20)
        if (addr === undefined || remark === undefined) return fail("InvalidField", "ServerDemo string is not UTF-8")
        messages.push({ _tag: "ServerDemo", addr, port: view.getUint16(at + 17, true), remark })
        break
      }
      case "Login": {
        const username = readString(bytes, at + 4, 12)
        const password = readString(bytes, at + 16, 20)
        if (username === undefined || password === undefined) return fail("InvalidField", "Login string is not UTF-8")
        messages.push({ _tag: "Login", username, password })
        break
      }
      case "LoginResponse":
        messages.push({ _tag: "LoginResponse", status: view.getUint8(at + 4) })
        break
      case "ClientDemo":
        messages.push({ _tag: "ClientDemo" })
        break
      case "HeartBeat":
        messages.push({ _tag: "HeartBeat" })
        break
    }
    at += msgSize
  }
  if (at !== size) return fail("Malformed", `${size - at} bytes after MsgCount ${count} messages`)
  return { seq, sendTime, messages: messages as unknown as Packet["messages"] }
}

/**
 * The classic codec: frame (a whole packet) <-> {@link Packet}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const codec: Codec.Codec<Packet> = {
  name: "classic",
  decode: decodePacket,
  encode: encodePacket
}

/**
 * A packet of the given messages, stamped with `sendTime` and SeqNum 0 (what
 * peers in the wild send).
 *
 * @since 0.1.0
 * @category constructors
 */
export const packet = (sendTime: number, ...messages: [Message, ...Array<Message>]): Packet => ({
  seq: 0,
  sendTime,
  messages
})
