/**
 * The three server modes as scoped Effects over a `SocketServer` in context:
 * chat (Tether protocol), echo (the benchmark's byte contract) and classic
 * (the Go heartbeat demo's packets). `main.ts` only reads flags and wires
 * layers; tests can run these in-process.
 */
import * as Classic from "@tether/protocol/Classic"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as ChatServer from "@tether/runtime/ChatServer"
import * as ClassicProtocol from "@tether/runtime/ClassicProtocol"
import type * as Connection from "@tether/runtime/Connection"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import type * as Socket from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** What every mode shares. */
export interface Common {
  readonly heartbeatInterval: Duration.Duration | undefined
  readonly heartbeatTimeout: Duration.Duration | undefined
  readonly loginTimeout: Duration.Duration
  readonly maxFrameBytes: number
  readonly maxConnections: number | undefined
  readonly drainTimeout: Duration.Duration
  /** Which engine driver runs the sessions (default `callback`; `fiber`: the card's FiberSet shape). */
  readonly driver?: Connection.Driver | undefined
  /** Names this node in cluster mode (chat). */
  readonly nodeId?: string | undefined
  /** Connections not logged in yet, in all and per address (chat, classic). */
  readonly maxPending?: number | undefined
  readonly maxPendingPerAddress?: number | undefined
  /** Chat: the in-memory history's bounds (lines and age per room). */
  readonly historySize?: number | undefined
  readonly historyAge?: Duration.Duration | undefined
  /** Bytes a connection may send before its login succeeds (chat, classic; default 64 KiB). */
  readonly maxLoginBytes?: number | undefined
  /** Per-session rate (chat): messages per second, burst, bytes per second; undefined: the default. */
  readonly rateLimit?: { readonly messagesPerSecond: number; readonly burst: number; readonly bytesPerSecond: number } | undefined
}

/** A running server, as the app reports it. */
export interface Running {
  readonly address: SocketServer.TcpAddress
  readonly stats: Server.Stats
  /** Connections accepted and running. */
  readonly connections: () => number
  /** Chat mode: the busiest rooms since the previous call (`ChatServer.roomActivity`), for the dashboard. */
  readonly roomActivity?: ChatServer.ChatServer["roomActivity"] | undefined
  /** The live sessions, as the registry tells them apart. */
  readonly sessions: () => ReadonlyArray<{ readonly id: number; readonly user: string | undefined; readonly remote: string }>
  /**
   * Chat mode: makes a WebSocket (opened on the HTTP side's `/ws`) a session
   * of this server, beside its TCP sessions (`Server.accept`, with the
   * message framing: one Tether message per WebSocket text message).
   */
  readonly acceptWebSocket?: ((socket: Socket.Socket, remote: string) => Effect.Effect<void>) | undefined
}

type Requirements = SocketServer.SocketServer | Server.Authenticator | Scope.Scope

const tcp = (server: { readonly address: SocketServer.Address }) => server.address as SocketServer.TcpAddress

const running = <M>(server: Server.Server<M>): Running => ({
  address: tcp(server),
  stats: server.stats,
  connections: server.connections,
  sessions: () => server.registry.list()
})

const common = (options: Common) => ({
  loginTimeout: options.loginTimeout,
  drainTimeout: options.drainTimeout,
  ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
  ...(options.driver !== undefined ? { driver: options.driver } : {}),
  ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  ...(options.maxPendingPerAddress !== undefined ? { maxPendingPerAddress: options.maxPendingPerAddress } : {}),
  ...(options.maxLoginBytes !== undefined ? { maxLoginBytes: options.maxLoginBytes } : {})
})

/** Chat: login, rooms with numbered history, resume with replay, Say -> Said to the room then Ack, Joined / Left, Who -> Present (`ChatServer`). */
export const chat = (options: Common & { readonly heartbeat: "ping" | "idle" | "adaptive" | "off" }): Effect.Effect<Running, never, Requirements> =>
  Effect.gen(function*() {
    const interval = options.heartbeatInterval ?? Duration.seconds(5)
    const timeout = options.heartbeatTimeout ?? Duration.seconds(17)
    const heartbeat = options.heartbeat === "ping"
      ? Heartbeat.ping({ interval, timeout })
      : options.heartbeat === "idle"
      ? Heartbeat.idle({ timeout })
      : options.heartbeat === "adaptive"
      ? Heartbeat.adaptive({ timeout, ...(options.heartbeatInterval ? { max: interval } : {}) })
      : Heartbeat.off
    const server = yield* ChatServer.make({
      heartbeat,
      maxFrameBytes: options.maxFrameBytes,
      loginTimeout: options.loginTimeout,
      drainTimeout: options.drainTimeout,
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.driver !== undefined ? { driver: options.driver } : {}),
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
      ...(options.maxPendingPerAddress !== undefined ? { maxPendingPerAddress: options.maxPendingPerAddress } : {}),
      ...(options.maxLoginBytes !== undefined ? { maxLoginBytes: options.maxLoginBytes } : {}),
      ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
      historyLimits: {
        ...(options.historySize !== undefined ? { maxEntries: options.historySize } : {}),
        ...(options.historyAge !== undefined ? { maxAgeMs: Duration.toMillis(options.historyAge) } : {})
      }
    })
    // WebSocket peers: the same sessions and codec; each message one frame, as large as a TCP one.
    const messages = Frame.messages({ maxFrameBytes: options.maxFrameBytes })
    return {
      ...running(server),
      roomActivity: server.roomActivity,
      acceptWebSocket: (socket, remote) => server.accept(socket, { remote, framing: messages })
    }
  })

const PING = new TextEncoder().encode("PING")

/**
 * Echo: every frame back unchanged. With a heartbeat interval, a `PING`
 * frame every interval; the peer's `PONG` (like any frame) counts as a sign
 * of life and is not echoed; a peer silent for the timeout is closed.
 */
export const echo = (options: Common & { readonly framing: "length" | "lines" }): Effect.Effect<Running, never, Requirements> =>
  Effect.gen(function*() {
    const interval = options.heartbeatInterval
    const timeout = options.heartbeatTimeout ?? (interval ? Duration.times(interval, 3) : undefined)
    const heartbeat: Heartbeat.Policy = interval !== undefined && timeout !== undefined
      ? { ...Heartbeat.ping({ interval, timeout }), answers: false }
      : timeout !== undefined
      ? { ...Heartbeat.idle({ timeout }), answers: false }
      : Heartbeat.off
    const server = yield* Server.make<Uint8Array>({
      ...common(options),
      framing: options.framing === "lines"
        ? Frame.lines({ maxLineBytes: options.maxFrameBytes })
        : Frame.lengthPrefixed({ maxFrameBytes: options.maxFrameBytes }),
      codec: Codec.bytes,
      dialect: { ...Heartbeat.bytes, ping: () => PING },
      heartbeat,
      outbound: { overflow: "backpressure" },
      // Backpressure: a peer that does not read its echoes stops being read.
      handler: (session, frame) => void session.unsafeSend(frame)
    })
    return running(server)
  })

/** Classic: the reference server of the Go heartbeat demo, byte for byte. */
export const classic = (options: Common): Effect.Effect<Running, never, Requirements> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    let port = 0
    const server = yield* Server.make<Classic.Packet>({
      ...common(options),
      framing: Frame.classic({ maxPacketBytes: Math.min(options.maxFrameBytes, Frame.classicMaxPacketBytes) }),
      codec: Classic.codec,
      dialect: ClassicProtocol.dialect(now),
      heartbeat: ClassicProtocol.serverHeartbeat({
        ...(options.heartbeatInterval ? { interval: options.heartbeatInterval } : {}),
        ...(options.heartbeatTimeout ? { timeout: options.heartbeatTimeout } : {})
      }),
      login: ClassicProtocol.serverLogin(now),
      // The Go reference server accepts any number of sessions for the same credentials.
      sessionsPerUser: "many",
      handler: (session, packet) => {
        const replies = packet.messages.flatMap((m): Array<Classic.Message> =>
          m._tag === "ClientDemo" ? [{ _tag: "ServerDemo", addr: "127.0.0.1", port, remark: "server response: ok" }] : []
        )
        if (replies.length === 0) return
        session.unsafeSend({ seq: 0, sendTime: now(), messages: replies as [Classic.Message, ...Array<Classic.Message>] })
      }
    })
    port = tcp(server).port
    return running(server)
  })
