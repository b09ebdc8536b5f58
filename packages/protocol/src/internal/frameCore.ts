/**
 * The framing model (errors, decoder, framing) and the helpers every framing
 * is built from. Public through `Frame`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import { ByteQueue } from "./byteQueue.js"

/**
 * Why a byte stream could not be framed.
 *
 * - `FrameTooLarge`: a declared (or, for lines, buffered) size over the limit.
 * - `Malformed`: a header that no valid frame has (e.g. a classic PktSize under 16).
 * - `Truncated`: the stream ended inside a frame.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly reason: "FrameTooLarge" | "Malformed" | "Truncated" | "InvalidUtf8" | "BinaryMessage"
  readonly framing: string
  /** The size involved: declared frame size, or bytes left over for `Truncated`. */
  readonly size: number
  /** The limit in force, in bytes. */
  readonly limit: number
}> {
  override get message(): string {
    switch (this.reason) {
      case "FrameTooLarge":
        return `${this.framing}: frame of ${this.size} bytes exceeds the limit of ${this.limit} bytes`
      case "Malformed":
        return `${this.framing}: malformed header declaring ${this.size} bytes (limit ${this.limit})`
      case "Truncated":
        return `${this.framing}: stream ended with ${this.size} bytes of an incomplete frame`
      case "InvalidUtf8":
        return `${this.framing}: the stream is not valid UTF-8`
      case "BinaryMessage":
        return `${this.framing}: a binary message of ${this.size} bytes where text is expected`
    }
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isFrameError = (u: unknown): u is FrameError => u instanceof FrameError

/**
 * A per-connection incremental decoder. `push` returns the frames a chunk
 * completed (often none), or a {@link FrameError}; after an error the decoder
 * keeps returning it. Frames may be views into the pushed chunks: treat them
 * as read-only.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decoder<Frame = Uint8Array> {
  readonly push: (chunk: Uint8Array) => ReadonlyArray<Frame> | FrameError
  /**
   * Like `push`, appending the frames to `out` (no array per chunk): the
   * path a `Wire` takes when it can. Returns the error, if any (frames
   * before it are appended).
   */
  readonly pushInto?: (chunk: Uint8Array, out: Array<Frame>) => FrameError | undefined
  /** Call at end of stream: a `Truncated` error if bytes of a frame are left over. */
  readonly end: () => FrameError | undefined
  /** Bytes held that belong to an incomplete frame. */
  readonly buffered: () => number
}

/**
 * A framing: a decoder factory and an encoder. `encode` and `encodeAll`
 * return a {@link FrameError} for a payload over the limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface Framing {
  readonly name: string
  /** Largest payload (or, for classic, whole packet) accepted, in bytes. */
  readonly maxFrameBytes: number
  readonly decoder: () => Decoder
  readonly encode: (payload: Uint8Array) => Uint8Array | FrameError
  /**
   * Encodes several payloads into one buffer: one socket write for a batch.
   * `allocate` makes the output buffer (default `new Uint8Array(size)`; every
   * byte of it is written, so a transport may pass a non-zeroed allocator
   * such as Node's `Buffer.allocUnsafe`).
   */
  readonly encodeAll: (payloads: ReadonlyArray<Uint8Array>, allocate?: (size: number) => Uint8Array) => Uint8Array | FrameError
  /**
   * Like `encodeAll`, but as a list of buffers whose concatenation is the
   * same bytes, large payloads referenced instead of copied: for a gathered
   * write (`writev`). Only framings that can (length-prefixed) have it.
   */
  readonly encodeChunks?: (
    payloads: ReadonlyArray<Uint8Array>,
    allocate?: (size: number) => Uint8Array
  ) => Array<Uint8Array> | FrameError
  /**
   * For text framings (`lines`): encodes several text payloads into one
   * buffer, the same bytes as `encodeAll` of their UTF-8 encodings, with one
   * UTF-8 conversion for the whole batch (see `Codec.encodeText`).
   */
  readonly encodeTexts?: (texts: ReadonlyArray<string>) => Uint8Array | FrameError
  /**
   * For text framings (`lines`): a decoder whose frames are the UTF-8 text
   * of the frames `decoder` gives, each chunk decoded once (as a raw
   * `node:net` server decodes a chunk and slices lines from the string).
   * Invalid UTF-8 is a `FrameError` ("InvalidUtf8"). See `Codec.decodeText`.
   */
  readonly textDecoder?: () => Decoder<string>
  /**
   * A framing for message-oriented transports (WebSocket): each chunk a
   * transport delivers is one whole frame, and frames are never joined on the
   * way out (`Wire.frame` gives one buffer per payload, which the transport
   * sends as one message each). See `Frame.messages`.
   */
  readonly perMessage?: boolean
}

/**
 * Payloads of at least this many bytes are written by reference (not
 * copied) by `encodeChunks`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const gatherThreshold = 4096

/** @internal */
export const noFrames: ReadonlyArray<Uint8Array> = []
/** @internal */
export const noTexts: ReadonlyArray<string> = []

/** @internal */
export const zeroed = (size: number): Uint8Array => new Uint8Array(size)

/** `target.set(source, at)`, with a plain loop for small sources (where `set`'s fixed cost dominates). */
export const copyInto = (target: Uint8Array, source: Uint8Array, at: number): void => {
  const n = source.length
  if (n > 8) return target.set(source, at)
  for (let i = 0; i < n; i++) target[at + i] = source[i]!
}

/**
 * Builds a decoder from a step function that, given the queue, either returns
 * a frame, `undefined` (needs more bytes) or an error.
 *
 * @internal
 */
export const makeDecoder = (
  framing: string,
  step: (queue: ByteQueue) => Uint8Array | FrameError | undefined,
  limit: number,
  /** Bytes of the current frame already consumed from the queue (e.g. its length field). */
  consumed: () => number = () => 0
): Decoder => {
  const queue = new ByteQueue()
  let error: FrameError | undefined
  const pushInto = (chunk: Uint8Array, out: Array<Uint8Array>): FrameError | undefined => {
    if (error !== undefined) return error
    queue.push(chunk)
    for (;;) {
      const result = step(queue)
      if (result === undefined) return undefined
      if (result instanceof FrameError) return error = result
      out.push(result)
    }
  }
  return {
    push(chunk) {
      const frames: Array<Uint8Array> = []
      const failed = pushInto(chunk, frames)
      return failed ?? (frames.length === 0 ? noFrames : frames)
    },
    pushInto,
    end() {
      if (error !== undefined) return error
      const left = queue.available + consumed()
      if (left > 0) {
        error = new FrameError({ reason: "Truncated", framing, size: left, limit })
        return error
      }
      return undefined
    },
    buffered: () => queue.available + consumed()
  }
}

/**
 * Options of the length-prefixed framing.
 *
 * @since 0.1.0
 * @category models
 */
