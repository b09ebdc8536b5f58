/**
 * The node:net transport of `NodeTether`'s server sockets: listener functions
 * shared by every socket, writes without a callback, 64 KiB write slabs.
 *
 * @internal
 */
import * as NodeSocket from "@effect/platform-node-shared/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as Transport from "@tether/runtime/Transport"
import * as Effect from "effect/Effect"
import type * as Net from "node:net"

const kTransport = Symbol.for("@tether/node/NetTransport")
type Tagged = Net.Socket & { [kTransport]: NetTransport }

// Listeners shared by every socket (Node calls them with the socket as
// `this`): no closure per connection.
function onSocketData(this: Tagged, chunk: Uint8Array) {
  this[kTransport].handlers!.onData(chunk)
}
function onSocketEnd(this: Tagged) {
  this[kTransport].handlers?.onEnd()
}
function onSocketError(this: Tagged, cause: Error) {
  const transport = this[kTransport]
  // Node throws an 'error' event nobody listens to: this listener stays for the socket's life.
  transport.error ??= cause
  transport.handlers?.onError(new Socket.SocketGenericError({ reason: "Read", cause }))
}

const slabSize = 64 * 1024
const slabMax = 4 * 1024
let slab: ArrayBuffer = new ArrayBuffer(0)
let slabUsed = slabSize

/**
 * Allocates a buffer for outgoing bytes as this package's transports do (a
 * `Transport.allocate` for other transports over `node:net`). Batches of up
 * to 4 KiB are carved from 64 KiB slabs shared by all connections and never
 * reused (a slice stays valid while a pending write holds it); larger ones
 * are allocated alone. Not zero-filled. Why: Node's own pool
 * (`Buffer.allocUnsafe`) is 8 KiB, so a batch of a few KiB paid for a fresh
 * pool every ~3 batches (measured ~330 ns per allocation, ~10 ns per 64 B
 * frame).
 *
 * @since 0.1.0
 * @category utils
 */
export const allocate = (size: number): Uint8Array => {
  if (size > slabMax) return Buffer.allocUnsafe(size)
  if (slabUsed + size > slabSize) {
    slab = Buffer.allocUnsafeSlow(slabSize).buffer as ArrayBuffer
    slabUsed = 0
  }
  // A Buffer view, not a plain Uint8Array: a socket write converts a plain
  // one to a Buffer first (one more object per write).
  const out = Buffer.from(slab, slabUsed, size)
  slabUsed = (slabUsed + size + 7) & ~7
  return out
}

/**
 * A Tether transport over an accepted `net.Socket`, and the platform
 * `Socket` view of it (made only if something runs it the platform way).
 */
export class NetTransport implements Transport.Transport {
  readonly [Socket.TypeId]: Socket.TypeId = Socket.TypeId
  readonly [Transport.TypeId]: Transport.Transport = this
  handlers: Transport.Handlers | undefined = undefined
  error: Error | undefined = undefined
  private platform: Socket.Socket | undefined = undefined
  constructor(readonly socket: Net.Socket) {
    ;(socket as Tagged)[kTransport] = this
    socket.on("error", onSocketError)
  }
  get remote(): string {
    return `${this.socket.remoteAddress ?? "?"}:${this.socket.remotePort ?? "?"}`
  }
  start(handlers: Transport.Handlers): void {
    const socket = this.socket
    if (this.error !== undefined) {
      return handlers.onError(new Socket.SocketGenericError({ reason: "Read", cause: this.error }))
    }
    if (socket.destroyed || socket.readableEnded) return handlers.onEnd()
    this.handlers = handlers
    socket.on("data", onSocketData)
    socket.on("end", onSocketEnd)
    socket.on("close", onSocketEnd)
  }
  allocate(size: number): Uint8Array {
    return allocate(size)
  }
  // No write callback (Node would schedule one per write): a write under the
  // high-water mark is taken at once; above it the connection waits for drain.
  // Write errors arrive as the socket's "error" event (onError).
  write(bytes: Uint8Array, done: (error?: Error | null) => void): boolean {
    if (this.socket.write(bytes)) return true
    this.waitDrain(done)
    return false
  }
  writev(chunks: ReadonlyArray<Uint8Array>, done: (error?: Error | null) => void): boolean {
    const socket = this.socket
    socket.cork()
    for (let i = 0; i < chunks.length; i++) socket.write(chunks[i]!)
    socket.uncork()
    if (socket.writableLength < socket.writableHighWaterMark) return true
    this.waitDrain(done)
    return false
  }
  private waitDrain(done: (error?: Error | null) => void): void {
    // Rare (a peer reading slower than it is written to): a closure per wait is fine.
    this.socket.once("drain", () => done())
  }
  end(): void {
    // Flush what was written, send FIN, then free the socket even if the peer never closes.
    if (!this.socket.destroyed) this.socket.destroySoon()
  }
  destroy(): void {
    this.socket.destroy()
  }
  private get view(): Socket.Socket {
    const socket = this.socket
    // As `NodeSocket.makeNet` does: the socket is closed when a run of it ends
    // (gracefully: what was written is flushed first).
    return this.platform ??= Effect.runSync(
      NodeSocket.fromDuplex(Effect.acquireRelease(Effect.succeed(socket), () =>
        Effect.sync(() => {
          if (!socket.destroyed) socket.destroySoon()
        })))
    )
  }
  get run() {
    return this.view.run
  }
  get runRaw() {
    return this.view.runRaw
  }
  get writer() {
    return this.view.writer
  }
}

