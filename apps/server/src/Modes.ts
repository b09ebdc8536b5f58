/**
 * The three server modes as scoped Effects over a `SocketServer` in context:
 * chat (Tether protocol), echo (the benchmark's byte contract) and classic
 * (the Go heartbeat demo's packets). `main.ts` only reads flags and wires
 * layers; tests can run these in-process. Each mode's code is in `modes/`
 * and is imported when the mode starts: an echo server does not load the
 * chat server, its rooms and history, or the classic protocol (less memory
 * held for the process's life; see bench/RESULTS.md, issue 17).
 */
import type * as Connection from "@tether/runtime/Connection"
import type * as ChatServer from "@tether/runtime/ChatServer"
import type * as Server from "@tether/runtime/Server"
import type * as Socket from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import type * as Duration from "effect/Duration"
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

/** What a mode needs in context. */
export type Requirements = SocketServer.SocketServer | Server.Authenticator | Scope.Scope

/** Chat mode's options: the heartbeat policy besides what every mode takes. */
export type ChatOptions = Common & { readonly heartbeat: "ping" | "idle" | "adaptive" | "off" }

/** Echo mode's options: the framing besides what every mode takes. */
export type EchoOptions = Common & { readonly framing: "length" | "lines" }

/** Chat: login, rooms with numbered history, resume with replay, Say -> Said to the room then Ack, Joined / Left, Who -> Present (`ChatServer`). */
export const chat = (options: ChatOptions): Effect.Effect<Running, never, Requirements> =>
  Effect.flatMap(Effect.promise(() => import("./modes/chat.js")), (mode) => mode.chat(options))

/**
 * Echo: every frame back unchanged. With a heartbeat interval, a `PING`
 * frame every interval; the peer's `PONG` (like any frame) counts as a sign
 * of life and is not echoed; a peer silent for the timeout is closed.
 */
export const echo = (options: EchoOptions): Effect.Effect<Running, never, Requirements> =>
  Effect.flatMap(Effect.promise(() => import("./modes/echo.js")), (mode) => mode.echo(options))

/** Classic: the reference server of the Go heartbeat demo, byte for byte. */
export const classic = (options: Common): Effect.Effect<Running, never, Requirements> =>
  Effect.flatMap(Effect.promise(() => import("./modes/classic.js")), (mode) => mode.classic(options))
