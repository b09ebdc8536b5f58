/**
 * The length-prefixed framing (u8 / u16 / u32 length, either byte order).
 *
 * @internal
 */
import { ByteQueue } from "./byteQueue.js"
import { copyInto, type Decoder, FrameError, type Framing, gatherThreshold, makeDecoder, zeroed } from "./frameCore.js"

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
