/**
 * Node wiring for Tether: `SocketServer` and `Socket` from
 * `@effect/platform-node` with TCP options, and the peer address of accepted
 * sockets. Imports by subpath only (the package root loads far more).
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import type * as Socket from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/**
 * TCP options shared by servers and clients.
 *
 * @since 0.1.0
 * @category models
 */
export interface TcpOptions {
  /** Disable Nagle's algorithm (default true: heartbeats and small messages go out at once). */
  readonly noDelay?: boolean
  /** Kernel TCP keepalive (default true). */
  readonly keepAlive?: boolean
  /** Idle time before the first keepalive probe (default 60 s). */
  readonly keepAliveInitialDelay?: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions extends TcpOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0: a free port (read it from the server's address). */
  readonly port?: number
  readonly backlog?: number
}

const tcp = (options: TcpOptions) => ({
  noDelay: options.noDelay ?? true,
  keepAlive: options.keepAlive ?? true,
  keepAliveInitialDelay: Duration.toMillis(options.keepAliveInitialDelay ?? "60 seconds")
})

/**
 * A `SocketServer` listening on TCP.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: ServerOptions = {}
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError> =>
  NodeSocketServer.layer({
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    ...(options.backlog !== undefined ? { backlog: options.backlog } : {}),
    ...tcp(options)
  })

/**
 * The remote `host:port` of the socket a `SocketServer` handler was given.
 * Pass it as the runtime server's `peerAddress`.
 *
 * @since 0.1.0
 * @category utils
 */
export const peerAddress: Effect.Effect<string> = Effect.map(
  Effect.serviceOption(NodeSocket.NetSocket),
  Option.match({
    onNone: () => "unknown",
    onSome: (socket) => `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`
  })
)

/**
 * A direct write to the socket a `SocketServer` handler was given
 * (`net.Socket.write` with its flush callback). Pass it as the runtime
 * server's `directWrite`: the connection's writer then needs no fiber and no
 * Effect per write.
 *
 * @since 0.1.0
 * @category utils
 */
export const directWrite: Effect.Effect<((bytes: Uint8Array, done: (error?: Error | null) => void) => void) | undefined> =
  Effect.map(
    Effect.serviceOption(NodeSocket.NetSocket),
    Option.match({
      onNone: () => undefined,
      onSome: (socket) => (bytes: Uint8Array, done: (error?: Error | null) => void) => {
        socket.write(bytes, done)
      }
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends TcpOptions {
  readonly host?: string
  readonly port: number
  /** Always set: there is no default in the platform (default here 5 s). */
  readonly connectTimeout?: Duration.DurationInput
}

/**
 * A fresh, lazily opened TCP socket: each `run` of it dials anew, so use one
 * per (re)connect attempt. Suits `Client.Options.connect`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions): Effect.Effect<Socket.Socket, Socket.SocketError> => {
  const settings = tcp(options)
  return NodeSocket.makeNet({
    host: options.host ?? "127.0.0.1",
    port: options.port,
    noDelay: settings.noDelay,
    keepAlive: settings.keepAlive,
    keepAliveInitialDelay: settings.keepAliveInitialDelay,
    openTimeout: options.connectTimeout ?? "5 seconds"
  })
}
