/**
 * A byte transport a {@link Connection} can drive with plain callbacks: no
 * fiber, scope or Effect per connection while it is idle.
 *
 * An `@effect/platform` `Socket` costs, per connection, a fiber running
 * `socket.run` with its own scope, `FiberSet`, latch and runtime (measured:
 * ~13 KiB of heap per idle connection before any Tether code). A transport
 * is what that socket wraps (Node: the `net.Socket`), seen through five
 * functions. A `Socket` may carry a transport (`attach`); a connection made
 * over such a socket uses the transport and never runs the socket. A socket
 * without one is run the platform way, so any `Socket` still works.
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import type * as Frame from "@tether/protocol/Frame"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@tether/runtime/Transport")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * What a transport calls while started, as methods of this object (a
 * Connection passes itself). Each may be called from any event loop
 * callback; after `onEnd` or `onError` nothing else is called.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handlers {
  readonly onData: (chunk: Uint8Array) => void
  /** The peer closed its side (or the transport closed without an error). */
  readonly onEnd: () => void
  /**
   * The transport failed; or (a message transport) it refused input before
   * buffering it: a message over its size limit, a binary message where text
   * is expected (a `FrameError`, as the framing would have failed).
   */
  readonly onError: (error: Socket.SocketError | Frame.FrameError) => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  /** `host:port` of the peer, for logs. */
  readonly remote: string
  /** Starts delivering input to `handlers`. Called at most once; the transport is open. */
  readonly start: (handlers: Handlers) => void
  /**
   * Writes `bytes`. Returns true when the transport took them and can take
   * more at once (Node: `net.Socket.write` returned true, its buffer is under
   * the high-water mark); `done` is then never called. Returns false when
   * the caller must wait: `done` is called when more can be written (Node:
   * `drain`) or with the error. A write error is also an `onError`. What
   * was taken is delivered before a graceful `end`.
   */
  readonly write: (bytes: Uint8Array, done: (error?: Error | null) => void) => boolean
  /**
   * Writes `chunks` as one gathered write (optional; Node: corked writes, one
   * `writev`); returns and calls `done` as `write` does. Lets large payloads
   * go out without being copied into a batch buffer. A message transport
   * (WebSocket, with `Frame.messages`) sends each chunk as one message.
   */
  readonly writev?: ((chunks: ReadonlyArray<Uint8Array>, done: (error?: Error | null) => void) => boolean) | undefined
  /**
   * Allocates a buffer for outgoing bytes that will be written whole
   * (optional; Node: `Buffer.allocUnsafe`, pooled and not zero-filled).
   */
  readonly allocate?: ((size: number) => Uint8Array) | undefined
  /** Closes gracefully: what was written is still delivered, then the peer sees end of stream. */
  readonly end: () => void
  /** Closes at once; unwritten bytes are dropped. */
  readonly destroy: () => void
}

/**
 * The transport a socket carries, if any.
 *
 * @since 0.1.0
 * @category accessors
 */
export const fromSocket = (socket: Socket.Socket): Transport | undefined =>
  (socket as Partial<Record<TypeId, Transport>>)[TypeId]

/**
 * Marks `socket` as carrying `transport`: connections made over it use the
 * transport directly.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = <S extends Socket.Socket>(socket: S, transport: Transport): S => {
  ;(socket as unknown as Record<TypeId, Transport>)[TypeId] = transport
  return socket
}
