/**
 * The framing of message-oriented transports (WebSocket).
 *
 * @internal
 */
import { type Decoder, FrameError, type Framing } from "./frameCore.js"
import { defaultMaxFrameBytes } from "./lengthPrefixed.js"
import * as Utf8 from "./utf8.js"

/**
 * Options of the message framing.
 *
 * @since 0.2.0
 * @category models
 */
export interface MessagesOptions {
  /** Largest message accepted (default `Frame.defaultMaxFrameBytes`). */
  readonly maxFrameBytes?: number
}

/**
 * The framing of a message-oriented transport (a WebSocket): the transport
 * delivers whole messages, each one frame, and sends each payload of a batch
 * as a message of its own, so two messages are never merged and no length
 * field or terminator is added. A message over `maxFrameBytes` is
 * `FrameTooLarge` (the transport should refuse it before buffering it too:
 * `ws`'s `maxPayload`); a text decoder rejects invalid UTF-8.
 *
 * `encodeChunks` is the way out (one buffer per payload, not copied);
 * `encodeAll` joins nothing: it takes exactly one payload.
 *
 * @since 0.2.0
 * @category constructors
 */
export const messages = (options: MessagesOptions = {}): Framing => {
  const max = options.maxFrameBytes ?? defaultMaxFrameBytes
  const name = "messages"
  const tooLarge = (size: number) => new FrameError({ reason: "FrameTooLarge", framing: name, size, limit: max })
  const decoder = (): Decoder => {
    let error: FrameError | undefined
    return {
      push: (chunk) => error ?? (chunk.length > max ? (error = tooLarge(chunk.length)) : [chunk]),
      end: () => error,
      buffered: () => 0
    }
  }
  const textDecoder = (): Decoder<string> => {
    let error: FrameError | undefined
    return {
      push(chunk) {
        if (error !== undefined) return error
        if (chunk.length > max) return error = tooLarge(chunk.length)
        try {
          return [Utf8.decoder.decode(chunk)]
        } catch {
          return error = new FrameError({ reason: "InvalidUtf8", framing: name, size: chunk.length, limit: max })
        }
      },
      end: () => error,
      buffered: () => 0
    }
  }
  const encodeChunks = (payloads: ReadonlyArray<Uint8Array>): Array<Uint8Array> | FrameError => {
    for (const payload of payloads) if (payload.length > max) return tooLarge(payload.length)
    return payloads.slice()
  }
  const encodeAll = (payloads: ReadonlyArray<Uint8Array>): Uint8Array | FrameError => {
    if (payloads.length !== 1) {
      // Joining would merge messages: the caller's bug, not a peer's.
      throw new Error("Frame.messages: encodeAll takes one payload; use encodeChunks for a batch")
    }
    const payload = payloads[0]!
    return payload.length > max ? tooLarge(payload.length) : payload
  }
  return {
    name,
    maxFrameBytes: max,
    decoder,
    textDecoder,
    encode: (payload) => encodeAll([payload]),
    encodeAll,
    encodeChunks,
    perMessage: true
  }
}

