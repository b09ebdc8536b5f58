/**
 * Why a connection ended. Every connection's `run` fails with exactly one of
 * these (or a handler's own error): each carries what a log line needs.
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import * as Printable from "@tether/protocol/Printable"
import * as Data from "effect/Data"

/**
 * Nothing (or, for pong-counting policies, no heartbeat) was heard from the
 * peer for `timeoutMs`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HeartbeatTimeout extends Data.TaggedError("HeartbeatTimeout")<{
  readonly silentForMs: number
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `peer silent for ${this.silentForMs} ms (heartbeat timeout ${this.timeoutMs} ms)`
  }
}

/**
 * The peer does not read fast enough: its outbound queue was full.
 *
 * @since 0.1.0
 * @category errors
 */
export class SlowConsumer extends Data.TaggedError("SlowConsumer")<{
  readonly queued: number
  readonly capacity: number
  /** Bytes queued (text payloads: UTF-16 units) and the byte bound, when that bound was the one hit. */
  readonly queuedBytes?: number
  readonly maxBytes?: number
}> {
  override get message(): string {
    return this.maxBytes !== undefined
      ? `slow consumer: ${this.queuedBytes} bytes queued (limit ${this.maxBytes} bytes)`
      : `slow consumer: ${this.queued} messages queued (capacity ${this.capacity})`
  }
}

/**
 * The peer broke the protocol's rules above the framing and codec level
 * (e.g. it sent faster than its messages could be handled, or a message that
 * is not allowed at this point).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly reason: "InboundOverflow" | "UnexpectedMessage" | "EncodeFailed"
  readonly detail: string
}> {
  override get message(): string {
    return `protocol error: ${this.reason}: ${this.detail}`
  }
}

/**
 * This side closed the connection on purpose: a kick, a shutdown, a refused
 * login. Queued messages were flushed first.
 *
 * @since 0.1.0
 * @category errors
 */
export class Kicked extends Data.TaggedError("Kicked")<{
  readonly reason: string
}> {
  override get message(): string {
    return `closed: ${this.reason}`
  }
}

/**
 * The peer closed the connection (FIN) between frames.
 *
 * @since 0.1.0
 * @category errors
 */
export class PeerClosed extends Data.TaggedError("PeerClosed")<{}> {
  override get message(): string {
    return "peer closed the connection"
  }
}

/**
 * A deadline set on the connection passed (e.g. no login within the login timeout).
 *
 * @since 0.1.0
 * @category errors
 */
export class DeadlineExceeded extends Data.TaggedError("DeadlineExceeded")<{
  readonly what: string
  readonly afterMs: number
}> {
  override get message(): string {
    return `${this.what} did not happen within ${this.afterMs} ms`
  }
}

/**
 * Everything a connection's `run` can fail with, besides a handler's own errors.
 *
 * @since 0.1.0
 * @category errors
 */
export type ConnectionError =
  | Socket.SocketError
  | Frame.FrameError
  | Codec.DecodeError
  | HeartbeatTimeout
  | SlowConsumer
  | ProtocolError
  | Kicked
  | PeerClosed
  | DeadlineExceeded

/**
 * A short, stable description of why a connection ended, for logs and
 * `Left` notices: escaped and at most 256 characters (plus a note of the cut).
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (error: unknown): string => Printable.forLog(describeRaw(error), 256)

/**
 * The full message of an error, escaped and bounded for a log line (at most
 * 512 characters plus a note of the cut): a peer's bytes quoted in an error
 * can neither fill the disk nor forge a log line.
 *
 * @since 0.1.0
 * @category utils
 */
export const detail = (error: unknown): string => {
  const message = typeof error === "object" && error !== null && "message" in error
    ? (error as { readonly message: unknown }).message
    : error
  return Printable.forLog(String(message), 512)
}

const describeRaw = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tagged = error as { readonly _tag: string; readonly message?: string; readonly reason?: unknown }
    switch (tagged._tag) {
      case "HeartbeatTimeout":
        return "heartbeat timeout"
      case "PeerClosed":
        return "quit"
      case "Kicked":
        return String(tagged.reason)
      case "SlowConsumer":
        return "slow consumer"
      case "SocketError": {
        const socketError = error as { readonly reason?: string; readonly cause?: { readonly code?: string; readonly message?: string } }
        const detail = socketError.cause?.code ?? socketError.cause?.message
        if (socketError.reason === "Open") return `cannot connect${detail ? ` (${detail})` : ""}`
        return `connection lost${detail ? ` (${detail})` : ""}`
      }
      case "DeadlineExceeded":
        return tagged.message ?? "deadline exceeded"
      default:
        return tagged.message ?? tagged._tag
    }
  }
  return String(error)
}
