/**
 * WebSocket as a Tether transport on Node: an upgrade handler for one path of
 * the HTTP server (`NodeHttp.serve`'s `webSockets`) whose sockets carry a
 * {@link Transport.Transport} over a `ws` WebSocket, so a session over a
 * WebSocket runs on the same engine (callback driver: no fiber per idle
 * session) as a TCP one. Pair it with `Frame.messages`: each WebSocket
 * message is one frame, each payload goes out as one text message.
 *
 * Hostile input is refused where `ws` sees it, before it is buffered: a
 * message over `maxPayload` (`ws` reads the declared length first) or with
 * invalid UTF-8 fails the connection with a `FrameError`, as does a binary
 * message (Tether's WebSocket messages are JSON text).
 *
 * Why not `HttpServerRequest.upgrade`: `@effect/platform-node` upgrades with a
 * `WebSocketServer` whose options cannot be set (its `maxPayload` stays at
 * `ws`'s 100 MiB per message), and its `Socket` hides whether a message was
 * text or binary and how much is buffered for the peer. The upgrade here is
 * the same `ws` library, configured; the sockets are still `@effect/platform`
 * `Socket`s (`Socket.fromWebSocket`, built only if run the platform way).
 * Under the fiber driver (`driver: "fiber"`) the platform's writer sends
 * bytes as binary messages and its reader does not tell binary from text:
 * Tether's WebSocket sessions use the callback driver (the default).
 *
 * @since 0.2.0
 */
import * as Socket from "@effect/platform/Socket"
import { FrameError } from "@tether/protocol/Frame"
import * as Transport from "@tether/runtime/Transport"
import * as Effect from "effect/Effect"
import type * as Http from "node:http"
import type * as Stream from "node:stream"
import { WebSocket, WebSocketServer } from "ws"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Largest message accepted, in bytes (default 1 MiB); a larger one closes the socket (1009). */
  readonly maxPayload?: number
  /**
   * Bytes buffered for the peer (in `ws` and the kernel socket) above which
   * a write waits until they are flushed (default 64 KiB); meanwhile the
   * connection's outbound queue takes the messages, within its bounds.
   */
  readonly highWaterMark?: number
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultMaxPayload = 1024 * 1024

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultHighWaterMark = 64 * 1024

/**
 * An upgrade handler for one path: `NodeHttp.serve` calls `handle` with the
 * `upgrade` event's arguments for requests to `path`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Upgrade {
  readonly path: string
  readonly handle: (request: Http.IncomingMessage, socket: Stream.Duplex, head: Buffer) => void
  /** Stops upgrading (the sockets already upgraded belong to whoever accepted them). */
  readonly close: () => void
}

const framing = "websocket"
const textOnly = { binary: false } as const
const noop = () => {}

const kTransport = Symbol.for("@tether/node/WsTransport")
type Tagged = WebSocket & { [kTransport]: WsTransport }

// Listeners shared by every WebSocket (`ws` calls them with the socket as
// `this`): no closure per session.
function onMessage(this: WebSocket, data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean) {
  ;(this as Tagged)[kTransport].message(data, isBinary)
}
function onError(this: WebSocket, cause: Error & { code?: string }) {
  ;(this as Tagged)[kTransport].error(cause)
}
function onClose(this: WebSocket) {
  ;(this as Tagged)[kTransport].closed()
}

/**
 * The transport over one `ws` WebSocket, and the platform `Socket` view of
 * it (made only if something runs it the platform way).
 */
class WsTransport implements Transport.Transport {
  readonly [Socket.TypeId]: Socket.TypeId = Socket.TypeId
  readonly [Transport.TypeId]: Transport.Transport = this
  private handlers: Transport.Handlers | undefined = undefined
  private finished = false
  private platform: Socket.Socket | undefined = undefined

  constructor(
    private readonly ws: WebSocket,
    readonly remote: string,
    private readonly maxPayload: number,
    private readonly highWaterMark: number
  ) {
    ;(ws as Tagged)[kTransport] = this
  }

  start(handlers: Transport.Handlers): void {
    this.handlers = handlers
    const ws = this.ws
    if (ws.readyState !== WebSocket.OPEN) {
      this.finished = true
      return handlers.onEnd()
    }
    ws.on("message", onMessage)
    ws.on("error", onError)
    ws.on("close", onClose)
  }

  message(data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean): void {
    if (this.finished) return
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    if (isBinary) {
      return this.fail(new FrameError({ reason: "BinaryMessage", framing, size: bytes.length, limit: this.maxPayload }))
    }
    this.handlers!.onData(bytes)
  }

  error(cause: Error & { code?: string }): void {
    switch (cause.code) {
      case "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH":
        // `ws` refuses a message from its declared length and does not say
        // the length: the size is reported as the least that fails.
        return this.fail(
          new FrameError({ reason: "FrameTooLarge", framing, size: this.maxPayload + 1, limit: this.maxPayload })
        )
      case "WS_ERR_INVALID_UTF8":
        return this.fail(new FrameError({ reason: "InvalidUtf8", framing, size: 0, limit: this.maxPayload }))
      default:
        return this.fail(new Socket.SocketGenericError({ reason: "Read", cause }))
    }
  }

  closed(): void {
    if (this.finished) return
    this.finished = true
    this.handlers?.onEnd()
  }

  private fail(error: Socket.SocketError | FrameError): void {
    if (this.finished) return
    this.finished = true
    this.handlers?.onError(error)
  }

  write(bytes: Uint8Array, done: (error?: Error | null) => void): boolean {
    return this.writev([bytes], done)
  }

  writev(chunks: ReadonlyArray<Uint8Array>, done: (error?: Error | null) => void): boolean {
    const ws = this.ws
    // Closing or closed: what is left is dropped; `close` / `error` end the connection.
    if (ws.readyState !== WebSocket.OPEN) return true
    const last = chunks.length - 1
    for (let i = 0; i < last; i++) ws.send(chunks[i]!, textOnly)
    const tail = chunks[last]!
    if (ws.bufferedAmount + tail.length < this.highWaterMark) {
      ws.send(tail, textOnly)
      return true
    }
    // Wait until this message (and so all before it) reached the kernel.
    ws.send(tail, textOnly, (error) => done(error ?? null))
    return false
  }

  end(): void {
    // Sends a close frame after what is queued; `ws` destroys the socket if
    // the peer does not answer it within 30 s.
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000)
  }

  destroy(): void {
    this.ws.terminate()
  }

  private get view(): Socket.Socket {
    return this.platform ??= Effect.runSync(Socket.fromWebSocket(Effect.succeed(this.ws as never)))
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

/**
 * A platform `Socket` over `ws`, carrying a {@link Transport.Transport}: a
 * Tether connection made over it runs on the transport's callbacks; anything
 * else can `run` it the platform way (`Socket.fromWebSocket`, made then).
 *
 * @since 0.2.0
 * @category constructors
 */
export const toSocket = (ws: WebSocket, remote: string, options: Options = {}): Socket.Socket =>
  new WsTransport(
    ws,
    remote,
    options.maxPayload ?? defaultMaxPayload,
    options.highWaterMark ?? defaultHighWaterMark
  ) as unknown as Socket.Socket

/**
 * An upgrade handler for `path`: each WebSocket opened there becomes a
 * platform `Socket` carrying its transport and is handed to `accept` (e.g.
 * `server.accept(socket, { remote, framing: Frame.messages() })`), run with
 * `runFork`. While `accept` is undefined (the server is not up yet, or no
 * longer) requests get 503.
 *
 * @since 0.2.0
 * @category constructors
 */
export const upgrade = (
  path: string,
  accept: () => ((socket: Socket.Socket, remote: string) => Effect.Effect<void>) | undefined,
  runFork: (effect: Effect.Effect<void>) => unknown,
  options: Options = {}
): Upgrade => {
  const maxPayload = options.maxPayload ?? defaultMaxPayload
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload,
    // No compression: a small message would cost a zlib context per socket.
    perMessageDeflate: false,
    clientTracking: false
  })
  return {
    path,
    handle: (request, socket, head) => {
      const to = accept()
      if (to === undefined) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
        return
      }
      socket.on("error", noop)
      wss.handleUpgrade(request, socket, head, (ws) => {
        const remote = `${request.socket.remoteAddress}:${request.socket.remotePort}`
        runFork(to(toSocket(ws, remote, options), remote))
      })
    },
    close: () => wss.close()
  }
}
