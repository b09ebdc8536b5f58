/**
 * Node wiring for Tether: a TCP `SocketServer` whose accepted sockets carry a
 * Tether {@link Transport.Transport} over the `net.Socket` (connections then
 * cost no platform fiber, scope or FiberSet), client `Socket`s from
 * `@effect/platform-node` with TCP options, and the peer address of accepted
 * sockets. Imports by subpath only (the package root loads far more), and
 * `NodeSocket` from `@effect/platform-node-shared`, the same module without
 * `@effect/platform-node`'s WebSocket constructor (which loads `ws`: ~8 MiB
 * of RSS in a server that never dials a WebSocket).
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node-shared/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Metrics from "@tether/runtime/Metrics"
import * as Transport from "@tether/runtime/Transport"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import { allocate as allocateSlab, NetTransport } from "./internal/netTransport.js"
import * as Tls from "node:tls"

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
  /** Serve TLS instead of plain TCP. */
  readonly tls?: TlsServerOptions | undefined
}

/**
 * TLS for a server. Accepted sockets are `tls.TLSSocket`s (a `net.Socket`
 * subclass): they carry the same Tether transport as plain TCP ones, handed
 * to the handler once the handshake is done. A peer that fails the handshake
 * (plaintext, wrong certificate, too slow) is closed by Node and never
 * reaches the handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsServerOptions {
  /** The server's certificate chain (PEM). */
  readonly cert: string | Uint8Array
  /** The server's private key (PEM). */
  readonly key: string | Uint8Array
  /** Certificate authorities trusted for client certificates (PEM). */
  readonly ca?: string | Uint8Array | undefined
  /** Require a client certificate signed by `ca` (client-certificate authentication). Default false. */
  readonly requireClientCert?: boolean | undefined
  /** A handshake not done within this is dropped (default 10 s; Node's own is 120 s). */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
}

/**
 * Node TLS server options for {@link TlsServerOptions}.
 *
 * @since 0.1.0
 * @category utils
 */
export const tlsServerOptions = (options: TlsServerOptions): Tls.TlsOptions => ({
  cert: options.cert as string | Buffer,
  key: options.key as string | Buffer,
  ...(options.ca !== undefined ? { ca: options.ca as string | Buffer } : {}),
  ...(options.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
  handshakeTimeout: Duration.toMillis(options.handshakeTimeout ?? "10 seconds"),
  minVersion: "TLSv1.2"
})

const tcp = (options: TcpOptions) => ({
  noDelay: options.noDelay ?? true,
  keepAlive: options.keepAlive ?? true,
  keepAliveInitialDelay: Duration.toMillis(options.keepAliveInitialDelay ?? "60 seconds")
})

/**
 * Allocates a buffer for outgoing bytes as this package's transports do (a
 * `Transport.allocate` for other transports over `node:net`). Batches of up
 * to 4 KiB are carved from 64 KiB slabs shared by all connections and never
 * reused (a slice stays valid while a pending write holds it); larger ones
 * are allocated alone. Not zero-filled.
 *
 * @since 0.1.0
 * @category utils
 */
export const allocate: (size: number) => Uint8Array = allocateSlab

/**
 * A TCP `SocketServer` over `node:net` (scoped: listening until the scope
 * closes). Each accepted socket carries a Tether transport, so a Tether
 * `Connection` over it needs no fiber of its own while idle; other users can
 * still `run` it as a platform `Socket`. The handler of `run` is started once
 * per connection with `NodeSocket.NetSocket` in context and should return
 * quickly (fork what lives as long as the connection).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (
  options: ServerOptions = {}
): Effect.Effect<SocketServer.SocketServer["Type"], SocketServer.SocketServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const pending: Array<Net.Socket> = []
    let onConnection = (socket: Net.Socket) => {
      pending.push(socket)
    }
    const failed = yield* Deferred.make<never, Error>()
    // A TLS server hands over sockets once their handshake is done ("secureConnection").
    const server: Net.Server = options.tls !== undefined
      ? Tls.createServer({ ...tcp(options), ...tlsServerOptions(options.tls) }, (socket) => onConnection(socket))
      : Net.createServer({ ...tcp(options) }, (socket) => onConnection(socket))
    // An error on accept (EMFILE / ENFILE: out of file descriptors; ECONNABORTED ...)
    // concerns one incoming connection, not the server: Node (libuv) keeps
    // listening, so it is logged (the apps' loggers rate-limit repeats) and
    // counted, and the sessions already open carry on.
    const logRuntime = yield* Effect.runtime<never>()
    server.on("error", (cause: NodeJS.ErrnoException) => {
      if (cause.syscall === "accept") {
        Metrics.acceptErrors.unsafeUpdate(1, [])
        Runtime.runFork(logRuntime)(
          Effect.logWarning(`accept failed: ${cause.code ?? cause.message}${
            cause.code === "EMFILE" || cause.code === "ENFILE" ? " (out of file descriptors; raise `ulimit -n`)" : ""
          }`)
        )
        return
      }
      Deferred.unsafeDone(failed, Exit.fail(cause))
    })
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        for (const socket of pending) socket.destroy()
        server.close(() => resume(Effect.void))
      })
    )
    yield* Effect.async<void>((resume) => {
      server.listen({
        host: options.host ?? "127.0.0.1",
        port: options.port ?? 0,
        ...(options.backlog !== undefined ? { backlog: options.backlog } : {})
      }, () => resume(Effect.void))
    }).pipe(
      Effect.raceFirst(
        Effect.mapError(Deferred.await(failed), (cause) => new SocketServer.SocketServerError({ reason: "Open", cause }))
      )
    )
    const address = server.address()!
    const run = <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
      Effect.flatMap(Effect.runtime<R>(), (runtime) => {
        const fork = Runtime.runFork(runtime)
        const accept = (socket: Net.Socket) => {
          fork(
            handler(new NetTransport(socket)).pipe(
              Effect.provideService(NodeSocket.NetSocket, socket),
              Effect.catchAllCause((cause) => Effect.logError("connection handler failed", cause))
            )
          )
        }
        return Effect.async<never>(() => {
          const previous = onConnection
          onConnection = accept
          for (const socket of pending.splice(0)) accept(socket)
          return Effect.sync(() => {
            onConnection = previous
          })
        }).pipe(
          Effect.raceFirst(
            Effect.mapError(
              Deferred.await(failed),
              (cause) => new SocketServer.SocketServerError({ reason: "Unknown", cause })
            )
          )
        )
      })
    return SocketServer.SocketServer.of({
      address: typeof address === "string"
        ? { _tag: "UnixAddress", path: address }
        : { _tag: "TcpAddress", hostname: address.address, port: address.port },
      run
    })
  })

/**
 * A `SocketServer` listening on TCP ({@link makeServer}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: ServerOptions = {}
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError> =>
  Layer.scoped(SocketServer.SocketServer, makeServer(options))

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
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends TcpOptions {
  readonly host?: string
  readonly port: number
  /** Always set: there is no default in the platform (default here 5 s). */
  readonly connectTimeout?: Duration.DurationInput
  /** Speak TLS (`true`: verify the server against the system's CAs). */
  readonly tls?: TlsConnectOptions | true | undefined
}

/**
 * TLS for a client.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsConnectOptions {
  /** Certificate authorities trusted for the server's certificate (PEM); default the system's. */
  readonly ca?: string | Uint8Array | undefined
  /** A client certificate and its key (PEM), for servers that require one. */
  readonly cert?: string | Uint8Array | undefined
  readonly key?: string | Uint8Array | undefined
  /** The name the server's certificate must carry (default `host`). */
  readonly servername?: string | undefined
  /** Accept any server certificate (tests only: anyone in the middle can read the traffic). Default false. */
  readonly insecure?: boolean | undefined
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
  if (options.tls !== undefined) return connectTls(options, options.tls === true ? {} : options.tls)
  return NodeSocket.makeNet({
    host: options.host ?? "127.0.0.1",
    port: options.port,
    noDelay: settings.noDelay,
    keepAlive: settings.keepAlive,
    keepAliveInitialDelay: settings.keepAliveInitialDelay,
    openTimeout: options.connectTimeout ?? "5 seconds"
  })
}

const connectTls = (options: ConnectOptions, tls: TlsConnectOptions): Effect.Effect<Socket.Socket, Socket.SocketError> => {
  const settings = tcp(options)
  const host = options.host ?? "127.0.0.1"
  // As NodeSocket.makeNet, but open once the TLS handshake is done.
  return NodeSocket.fromDuplex(
    Effect.acquireRelease(
      Effect.async<Tls.TLSSocket, Socket.SocketError>((resume) => {
        const conn = Tls.connect({
          host,
          port: options.port,
          ...(Net.isIP(host) === 0 ? { servername: tls.servername ?? host } : tls.servername ? { servername: tls.servername } : {}),
          ...(tls.ca !== undefined ? { ca: tls.ca as string | Buffer } : {}),
          ...(tls.cert !== undefined ? { cert: tls.cert as string | Buffer } : {}),
          ...(tls.key !== undefined ? { key: tls.key as string | Buffer } : {}),
          rejectUnauthorized: tls.insecure !== true,
          minVersion: "TLSv1.2"
        })
        conn.setNoDelay(settings.noDelay)
        conn.setKeepAlive(settings.keepAlive, settings.keepAliveInitialDelay)
        conn.once("secureConnect", () => resume(Effect.succeed(conn)))
        conn.on("error", (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause }))))
        return Effect.sync(() => conn.destroy())
      }),
      (conn) => Effect.sync(() => conn.destroySoon())
    ),
    { openTimeout: options.connectTimeout ?? "5 seconds" }
  )
}
