/**
 * The classic packet framing of the Go heartbeat demo (u16 little-endian PktSize).
 *
 * @internal
 */
import { type Decoder, FrameError, type Framing, makeDecoder, zeroed } from "./frameCore.js"

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

