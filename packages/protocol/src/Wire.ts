/**
 * A wire: one framing and one codec together, as a connection uses them.
 * In the spirit of `@effect/rpc`'s `RpcSerialization` parser: the choices of
 * how payloads travel (bytes or text, copied into one batch or gathered by
 * reference) are made once, here, when the wire is built, so a connection
 * only ever calls `parser().push`, `encode` and `frame`.
 *
 * - Text in: a text framing (`Frame.lines`) with a text codec (JSON) decodes
 *   each chunk to UTF-8 once and parses lines as strings.
 * - Text out: the same pair queues strings and encodes a whole batch to UTF-8
 *   once per write.
 * - Gathered out: a length-prefixed framing sends payloads of
 *   `Frame.gatherThreshold` bytes or more by reference (`writev`), not copied.
 * - Message per payload: a message framing (`Frame.messages`, WebSockets)
 *   frames a batch as one buffer per payload, which the transport sends as
 *   one message each; payloads are never joined.
 *
 * @since 0.2.0
 */
import * as Codec from "./Codec.js"
import * as Frame from "./Frame.js"

/**
 * An encoded message, ready to be framed: bytes, or (text wires) a string.
 *
 * @since 0.2.0
 * @category models
 */
export type Payload = Uint8Array | string

/**
 * A message encoded once for many connections of the same wire (a
 * broadcast): pass it to a connection's `send` / `unsafeSend` instead of the
 * message.
 *
 * @since 0.2.0
 * @category models
 */
export class Encoded {
  constructor(readonly payload: Payload) {}
}

/**
 * Per-connection decoding state: chunks in, messages out.
 *
 * @since 0.2.0
 * @category models
 */
export interface Parser<M> {
  /**
   * Decodes what `chunk` completes, appending the messages to `out`. Returns
   * the first error (the messages before it are appended), else undefined.
   */
  readonly push: (chunk: Uint8Array, out: Array<M>) => Frame.FrameError | Codec.DecodeError | undefined
  /** At end of stream: `Truncated` if part of a frame is left over. */
  readonly end: () => Frame.FrameError | undefined
}

/**
 * A framed batch for one socket write: one buffer, or buffers for one
 * gathered write (their concatenation is the bytes). Over a message framing
 * (`Frame.perMessage`) always buffers, each one message.
 *
 * @since 0.2.0
 * @category models
 */
export type Batch = Uint8Array | Array<Uint8Array>

/**
 * @since 0.2.0
 * @category models
 */
export interface Wire<M> {
  readonly framing: Frame.Framing
  readonly codec: Codec.Codec<M>
  /** Whether payloads are strings (a text framing with a text codec). */
  readonly textual: boolean
  readonly parser: () => Parser<M>
  readonly encode: (message: M) => Payload | Codec.EncodeError
  /**
   * Frames `payloads` for one write. With `gather`, may return buffers that
   * reference large payloads instead of copying them. `allocate` makes
   * output buffers (every byte is written, so it may be non-zeroed).
   */
  readonly frame: (
    payloads: ReadonlyArray<Payload>,
    gather: boolean,
    allocate?: ((size: number) => Uint8Array) | undefined,
    /** The payloads' total length, when the caller knows it: under `Frame.gatherThreshold` nothing is gathered. */
    size?: number
  ) => Batch | Frame.FrameError
}

const textEncoder = new TextEncoder()
const toBytes = (payload: Payload): Uint8Array => typeof payload === "string" ? textEncoder.encode(payload) : payload
const isLarge = (payload: Payload) => typeof payload !== "string" && payload.length >= Frame.gatherThreshold

/** Decodes `frames` into `out`, in order; the first `DecodeError`, if any (the messages before it are appended). */
const decodeAll = <F, M>(
  frames: ReadonlyArray<F>,
  decode: (frame: F) => M | Codec.DecodeError,
  out: Array<M>
): Codec.DecodeError | undefined => {
  for (let i = 0; i < frames.length; i++) {
    const message = decode(frames[i]!)
    if (message instanceof Codec.DecodeError) return message
    out.push(message)
  }
  return undefined
}

/**
 * Binds `framing` and `codec` into a wire.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <M>(framing: Frame.Framing, codec: Codec.Codec<M>): Wire<M> => {
  const textual = codec.encodeText !== undefined && framing.encodeTexts !== undefined
  const textIn = codec.decodeText !== undefined && framing.textDecoder !== undefined
  const parser = textIn
    ? (): Parser<M> => {
      const decoder = framing.textDecoder!()
      const decodeText = codec.decodeText!
      return {
        push: (chunk, out) => {
          const frames = decoder.push(chunk)
          return frames instanceof Frame.FrameError ? frames : decodeAll(frames, decodeText, out)
        },
        end: decoder.end
      }
    }
    : (): Parser<M> => {
      const decoder = framing.decoder()
      const decode = codec.decode
      const pushInto = decoder.pushInto
      if (pushInto === undefined) {
        return {
          push: (chunk, out) => {
            const frames = decoder.push(chunk)
            return frames instanceof Frame.FrameError ? frames : decodeAll(frames, decode, out)
          },
          end: decoder.end
        }
      }
      // Bytes in, bytes out (`Codec.bytes`): frames go straight into `out`.
      if (codec === (Codec.bytes as Codec.Codec<unknown>)) return { push: pushInto as Parser<M>["push"], end: decoder.end }
      // Frames of one chunk land in a scratch array reused chunk after chunk.
      const frames: Array<Uint8Array> = []
      return {
        push: (chunk, out) => {
          const failed = pushInto(chunk, frames)
          const bad = decodeAll(frames, decode, out)
          frames.length = 0
          return bad ?? failed
        },
        end: decoder.end
      }
    }
  const encode: Wire<M>["encode"] = textual ? codec.encodeText! : codec.encode
  const encodeChunks = framing.encodeChunks
  const frame: Wire<M>["frame"] = framing.perMessage === true
    // One buffer per payload, each one message; strings (a broadcast encoded
    // by a text wire of the same codec) are converted one by one.
    ? (payloads) => encodeChunks!(payloads.map(toBytes))
    : textual
    ? (payloads, _gather, allocate) =>
      // A string batch is encoded to UTF-8 once; bytes among it (none, unless
      // a caller mixed wires) are converted to keep the stream correct.
      payloads.every((p) => typeof p === "string")
        ? framing.encodeTexts!(payloads as ReadonlyArray<string>)
        : framing.encodeAll(payloads.map(toBytes), allocate)
    : (payloads, gather, allocate, size) => {
      if (
        gather && encodeChunks !== undefined && (size === undefined || size >= Frame.gatherThreshold) &&
        payloads.some(isLarge)
      ) {
        return encodeChunks(payloads as ReadonlyArray<Uint8Array>, allocate)
      }
      return framing.encodeAll(payloads as ReadonlyArray<Uint8Array>, allocate)
    }
  return { framing, codec, textual, parser, encode, frame }
}

/**
 * Encodes `message` once for many connections of this wire (broadcast).
 * Throws the `EncodeError` of a message the codec cannot encode: that is the
 * program's bug, not a peer's.
 *
 * @since 0.2.0
 * @category constructors
 */
export const share = <M>(wire: Wire<M>, message: M): Encoded => {
  const payload = wire.encode(message)
  if (payload instanceof Codec.EncodeError) throw payload
  return new Encoded(payload)
}

/**
 * The total length of a framed batch, in bytes.
 *
 * @since 0.2.0
 * @category utils
 */
export const batchLength = (batch: Batch): number => {
  if (!Array.isArray(batch)) return batch.length
  let length = 0
  for (let i = 0; i < batch.length; i++) length += batch[i]!.length
  return length
}
