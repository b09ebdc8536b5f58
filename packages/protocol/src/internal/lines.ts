/**
 * The newline-delimited framing, bytes and text.
 *
 * @internal
 */
import * as Utf8 from "./utf8.js"
import { copyInto, type Decoder, FrameError, type Framing, makeDecoder, noTexts, zeroed } from "./frameCore.js"
import { defaultMaxFrameBytes } from "./lengthPrefixed.js"

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
 * Size of the classic packet header.
 *
 * @since 0.1.0
 * @category constants
 */
