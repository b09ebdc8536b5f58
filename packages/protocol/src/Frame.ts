/**
 * Framings: how a byte stream is cut into frames, and frames are put back on
 * the wire. Each connection gets its own incremental {@link Decoder}; any
 * split of the same bytes yields the same frames, a declared length over the
 * limit fails before its payload is buffered, and no input makes a decoder
 * throw.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import { ByteQueue } from "./internal/byteQueue.js"
import * as Utf8 from "./internal/utf8.js"

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
   * sends as one message each). See {@link messages}.
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

const noFrames: ReadonlyArray<Uint8Array> = []
const noTexts: ReadonlyArray<string> = []

const zeroed = (size: number): Uint8Array => new Uint8Array(size)

/** `target.set(source, at)`, with a plain loop for small sources (where `set`'s fixed cost dominates). */
const copyInto = (target: Uint8Array, source: Uint8Array, at: number): void => {
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
const makeDecoder = (
  framing: string,
  step: (queue: ByteQueue) => Uint8Array | FrameError | undefined,
  limit: number,
  /** Bytes of the current frame already consumed from the queue (e.g. its length field). */
  consumed: () => number = () => 0
): Decoder => {
  const queue = new ByteQueue()
  let error: FrameError | undefined
  return {
    push(chunk) {
      if (error !== undefined) return error
      queue.push(chunk)
      let frames: Array<Uint8Array> | undefined
      for (;;) {
        const result = step(queue)
        if (result === undefined) break
        if (result instanceof FrameError) {
          error = result
          return result
        }
        if (frames === undefined) frames = [result]
        else frames.push(result)
      }
      return frames ?? noFrames
    },
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
export interface LengthPrefixedOptions {
  /** Width of the length field in bytes (default 4). */
  readonly lengthBytes?: 1 | 2 | 4
  /** Byte order of the length field (default big-endian). */
  readonly byteOrder?: "big" | "little"
  /** Largest payload accepted (default {@link defaultMaxFrameBytes}). */
  readonly maxFrameBytes?: number
}

/**
 * 1 MiB.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultMaxFrameBytes = 1024 * 1024

/**
 * Length-prefixed frames: a length field (u32 big-endian by default) then the
 * payload. A declared length over `maxFrameBytes` fails as soon as the length
 * field is complete, before any payload is buffered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lengthPrefixed = (options: LengthPrefixedOptions = {}): Framing => {
  const width = options.lengthBytes ?? 4
  const little = (options.byteOrder ?? "big") === "little"
  const max = Math.min(options.maxFrameBytes ?? defaultMaxFrameBytes, 2 ** (8 * width) - 1)
  const name = `length-prefixed(u${width * 8}${little ? "le" : "be"})`

  const readLength = (queue: ByteQueue): number => {
    let value = 0
    for (let i = 0; i < width; i++) {
      const byte = queue.byteAt(little ? width - 1 - i : i)
      value = value * 256 + byte
    }
    return value
  }

  // Lengths are below 2^32 (max is clamped): shifts are exact. Written byte
  // by byte, the 4-byte big-endian case unrolled (the hot path of echo).
  const writeLength = width === 4 && !little
    ? (target: Uint8Array, at: number, length: number): void => {
      target[at] = length >>> 24
      target[at + 1] = (length >>> 16) & 0xff
      target[at + 2] = (length >>> 8) & 0xff
      target[at + 3] = length & 0xff
    }
    : (target: Uint8Array, at: number, length: number): void => {
      for (let i = 0; i < width; i++) {
        target[at + i] = (length >>> (8 * (little ? i : width - 1 - i))) & 0xff
      }
    }

  const tooLarge = (size: number) => new FrameError({ reason: "FrameTooLarge", framing: name, size, limit: max })
  const u32be = width === 4 && !little

  const decoder = (): Decoder => {
    let pending = -1
    return makeDecoder(name, (queue) => {
      // Fast path (the default u32be): length and payload within the current chunk.
      if (pending < 0 && u32be && queue.available > 4) {
        const chunk = queue.current()
        const at = queue.position
        const run = chunk.length - at
        if (run > 4) {
          const length = chunk[at]! * 0x1000000 + ((chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!)
          if (length > max) return tooLarge(length)
          if (length > 0 && run - 4 >= length) return queue.takeWithin(4, length)
        }
      }
      if (pending < 0) {
        if (queue.available < width) return undefined
        const length = readLength(queue)
        if (length > max) return tooLarge(length)
        queue.skip(width)
        pending = length
      }
      if (queue.available < pending) return undefined
      const frame = pending === 0 ? new Uint8Array(0) : queue.take(pending)
      pending = -1
      return frame
    }, max, () => (pending < 0 ? 0 : width))
  }

  const encodeAll = (payloads: ReadonlyArray<Uint8Array>, allocate = zeroed): Uint8Array | FrameError => {
    let total = 0
    for (const payload of payloads) {
      if (payload.length > max) return tooLarge(payload.length)
      total += width + payload.length
    }
    const out = allocate(total)
    let at = 0
    for (const payload of payloads) {
      writeLength(out, at, payload.length)
      copyInto(out, payload, at + width)
      at += width + payload.length
    }
    return out
  }

  const prefix = new Uint8Array(width)
  // The payload together with the `width` bytes before it in memory, when
  // those bytes are exactly its length field (a received frame sent on, as an
  // echo or a relay does): one chunk for the gathered write instead of two.
  // Only reads memory beside the view; the bytes sent are the same.
  const withOwnPrefix = (payload: Uint8Array): Uint8Array | undefined => {
    if (payload.byteOffset < width) return undefined
    writeLength(prefix, 0, payload.length)
    const view = new Uint8Array(payload.buffer, payload.byteOffset - width, payload.length + width)
    for (let k = 0; k < width; k++) if (view[k] !== prefix[k]) return undefined
    return view
  }

  const encodeChunks = (payloads: ReadonlyArray<Uint8Array>, allocate = zeroed): Array<Uint8Array> | FrameError => {
    const chunks: Array<Uint8Array> = []
    let from = 0
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i]!
      if (payload.length < gatherThreshold) continue
      if (payload.length > max) return tooLarge(payload.length)
      const whole = withOwnPrefix(payload)
      if (whole !== undefined) {
        if (from < i) {
          const head = encodeAll(payloads.slice(from, i), allocate)
          if (head instanceof FrameError) return head
          chunks.push(head)
        }
        chunks.push(whole)
        from = i + 1
        continue
      }
      // The small payloads before it, copied into one buffer with this one's length field.
      let total = width
      for (let j = from; j < i; j++) total += width + payloads[j]!.length
      const head = encodeAll(payloads.slice(from, i), (size) => allocate(size + width))
      if (head instanceof FrameError) return head
      writeLength(head, total - width, payload.length)
      chunks.push(head, payload)
      from = i + 1
    }
    if (from < payloads.length) {
      const tail = encodeAll(from === 0 ? payloads : payloads.slice(from), allocate)
      if (tail instanceof FrameError) return tail
      chunks.push(tail)
    }
    return chunks
  }

  return {
    name,
    maxFrameBytes: max,
    decoder,
    encode: (payload) => encodeAll([payload]),
    encodeAll,
    encodeChunks
  }
}

/**
 * Options of the newline-delimited framing.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinesOptions {
  /** Longest line accepted, without its terminator (default {@link defaultMaxFrameBytes}). */
  readonly maxLineBytes?: number
}

const LF = 0x0a
const CR = 0x0d

/**
 * Newline-delimited frames: each frame ends with `\n`; a `\r` before it is
 * dropped. A line that grows past `maxLineBytes` without a terminator fails at
 * once rather than being buffered further. Payloads must not contain `\n`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lines = (options: LinesOptions = {}): Framing => {
  const max = options.maxLineBytes ?? defaultMaxFrameBytes
  const name = "lines"
  const decoder = (): Decoder => {
    // Bytes already searched for a terminator, so no byte is scanned twice.
    let scanned = 0
    return makeDecoder(name, (queue) => {
      const at = queue.indexOf(LF, scanned)
      if (at === -1) {
        scanned = queue.available
        // A trailing CR may still turn out to be part of a CRLF terminator.
        const held = queue.available > 0 && queue.byteAt(queue.available - 1) === CR
          ? queue.available - 1
          : queue.available
        if (held > max) {
          return new FrameError({ reason: "FrameTooLarge", framing: name, size: held, limit: max })
        }
        return undefined
      }
      scanned = 0
      const length = at > 0 && queue.byteAt(at - 1) === CR ? at - 1 : at
      if (length > max) {
        return new FrameError({ reason: "FrameTooLarge", framing: name, size: length, limit: max })
      }
      const frame = length === 0 ? new Uint8Array(0) : queue.take(length)
      queue.skip(at + 1 - length)
      return frame
    }, max)
  }

  const encodeAll = (payloads: ReadonlyArray<Uint8Array>, allocate = zeroed): Uint8Array | FrameError => {
    let total = 0
    for (const payload of payloads) {
      if (payload.length > max) {
        return new FrameError({ reason: "FrameTooLarge", framing: name, size: payload.length, limit: max })
      }
      if (payload.indexOf(LF) !== -1) {
        return new FrameError({ reason: "Malformed", framing: name, size: payload.length, limit: max })
      }
      total += payload.length + 1
    }
    const out = allocate(total)
    let at = 0
    for (const payload of payloads) {
      copyInto(out, payload, at)
      out[at + payload.length] = LF
      at += payload.length + 1
    }
    return out
  }

  const encodeTexts = (texts: ReadonlyArray<string>): Uint8Array | FrameError => {
    let joined = ""
    for (const text of texts) {
      // UTF-8 takes at most three bytes per UTF-16 unit: count only texts that may be too long.
      if (text.length * 3 > max) {
        const size = Utf8.byteLength(text)
        if (size > max) return new FrameError({ reason: "FrameTooLarge", framing: name, size, limit: max })
      }
      if (text.indexOf("\n") !== -1) {
        return new FrameError({ reason: "Malformed", framing: name, size: Utf8.byteLength(text), limit: max })
      }
      joined += text + "\n"
    }
    return Utf8.encode(joined)
  }

  const textDecoder = (): Decoder<string> => {
    const utf8 = new TextDecoder("utf-8", { fatal: true })
    // Text after the last terminator. New text is searched alone and appended
    // (a rope, not copied), so no character is scanned twice however a line
    // is split; its UTF-8 size is counted only once it may exceed the limit.
    let pending = ""
    let pendingBytes = -1 // -1: not counted yet
    let pendingCR = false // pending ends with a CR (which may begin a CRLF)
    let error: FrameError | undefined
    const fail = (e: FrameError) => (error = e)
    const tooLarge = (size: number) => fail(new FrameError({ reason: "FrameTooLarge", framing: name, size, limit: max }))
    return {
      push(chunk) {
        if (error !== undefined) return error
        let text: string
        try {
          text = utf8.decode(chunk, { stream: true })
        } catch {
          return fail(new FrameError({ reason: "InvalidUtf8", framing: name, size: chunk.length, limit: max }))
        }
        let frames: Array<string> | undefined
        let from = 0
        for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", from)) {
          let line = from === 0 && pending.length > 0 ? pending + text.slice(0, at) : text.slice(from, at)
          if (from === 0) {
            pending = ""
            pendingBytes = -1
            pendingCR = false
          }
          if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1)
          // UTF-8 takes at most three bytes per UTF-16 unit: count only lines that may be too long.
          if (line.length * 3 > max) {
            const size = Utf8.byteLength(line)
            if (size > max) return tooLarge(size)
          }
          if (frames === undefined) frames = [line]
          else frames.push(line)
          from = at + 1
        }
        const rest = from === 0 ? text : text.slice(from)
        if (rest.length > 0) {
          pending += rest
          if (pendingBytes >= 0) pendingBytes += Utf8.byteLength(rest)
          pendingCR = rest.charCodeAt(rest.length - 1) === CR
        }
        // As the byte decoder: a line past the limit fails before its
        // terminator arrives (a trailing CR may still belong to a CRLF).
        if (pending.length * 3 > max) {
          if (pendingBytes < 0) pendingBytes = Utf8.byteLength(pending)
          const held = pendingCR ? pendingBytes - 1 : pendingBytes
          if (held > max) return tooLarge(held)
        }
        return frames ?? noTexts
      },
      end() {
        if (error !== undefined) return error
        let cutShort = false // a multi-byte sequence cut short by the end of the stream
        try {
          utf8.decode()
        } catch {
          cutShort = true
        }
        const held = Utf8.byteLength(pending)
        if (held > 0 || cutShort) {
          return fail(new FrameError({ reason: "Truncated", framing: name, size: Math.max(held, 1), limit: max }))
        }
        return undefined
      },
      buffered: () => Utf8.byteLength(pending)
    }
  }

  return { name, maxFrameBytes: max, decoder, encode: (payload) => encodeAll([payload]), encodeAll, encodeTexts, textDecoder }
}

/**
 * Options of the message framing.
 *
 * @since 0.2.0
 * @category models
 */
export interface MessagesOptions {
  /** Largest message accepted (default {@link defaultMaxFrameBytes}). */
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

/**
 * Size of the classic packet header.
 *
 * @since 0.1.0
 * @category constants
 */
export const classicHeaderBytes = 16

/**
 * Largest classic packet: PktSize is a u16.
 *
 * @since 0.1.0
 * @category constants
 */
export const classicMaxPacketBytes = 65535

/**
 * Options of the classic packet framing.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClassicOptions {
  /** Largest packet accepted, header included (default and most 65535). */
  readonly maxPacketBytes?: number
}

/**
 * The classic binary packet framing (`protocols/classic-packet.md`): a frame is
 * a whole packet, header included, its size read from the little-endian u16
 * PktSize at offset 0. A PktSize under 16 is `Malformed`. `encode` takes whole
 * packets (see `Classic.encodePacket`) and only checks their size field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const classic = (options: ClassicOptions = {}): Framing => {
  const max = Math.min(options.maxPacketBytes ?? classicMaxPacketBytes, classicMaxPacketBytes)
  const name = "classic-packet"
  const decoder = (): Decoder =>
    makeDecoder(name, (queue) => {
      if (queue.available < 2) return undefined
      const size = queue.byteAt(0) | (queue.byteAt(1) << 8)
      if (size < classicHeaderBytes) {
        return new FrameError({ reason: "Malformed", framing: name, size, limit: max })
      }
      if (size > max) return new FrameError({ reason: "FrameTooLarge", framing: name, size, limit: max })
      if (queue.available < size) return undefined
      return queue.take(size)
    }, max)

  const check = (packet: Uint8Array): FrameError | undefined => {
    const declared = packet.length >= 2 ? packet[0]! | (packet[1]! << 8) : 0
    if (packet.length > max) {
      return new FrameError({ reason: "FrameTooLarge", framing: name, size: packet.length, limit: max })
    }
    if (packet.length < classicHeaderBytes || declared !== packet.length) {
      return new FrameError({ reason: "Malformed", framing: name, size: declared, limit: max })
    }
    return undefined
  }

  const encodeAll = (packets: ReadonlyArray<Uint8Array>, allocate = zeroed): Uint8Array | FrameError => {
    let total = 0
    for (const packet of packets) {
      const error = check(packet)
      if (error) return error
      total += packet.length
    }
    if (packets.length === 1) return packets[0]!
    const out = allocate(total)
    let at = 0
    for (const packet of packets) {
      out.set(packet, at)
      at += packet.length
    }
    return out
  }

  return { name, maxFrameBytes: max, decoder, encode: (packet) => encodeAll([packet]), encodeAll }
}
