/**
 * The web chat's state, apart from rendering and from the socket: what the
 * page shows is a function of this value, and every change is one of the
 * pure transitions below (unit-testable without a DOM). Rooms, resume and an
 * offline buffer are meant to land here as more fields and transitions (a
 * room per transcript, the last offsets seen, an outbox) without touching
 * the renderer's shape.
 */
import type * as Message from "@tether/protocol/Message"

/** The connection, as the status line reads it. */
export type Connection =
  | { readonly _tag: "LoggedOut"; readonly error: string | undefined }
  | { readonly _tag: "Connecting"; readonly attempt: number }
  | { readonly _tag: "Connected" }
  | {
    readonly _tag: "Reconnecting"
    readonly attempt: number
    readonly maxAttempts: number
    /** When the next attempt starts (ms since the epoch). */
    readonly at: number
    readonly reason: string
  }
  | { readonly _tag: "GaveUp"; readonly reason: string }

/** One transcript line. `own` lines are pending until the server acknowledges them. */
export interface Line {
  readonly kind: "said" | "own" | "info"
  readonly from: string | undefined
  readonly text: string
  readonly at: number
  /** For own lines: the Say id, and whether the Ack came. */
  readonly id?: number
  readonly acked?: boolean
}

export interface State {
  readonly user: string | undefined
  readonly connection: Connection
  readonly lines: ReadonlyArray<Line>
  /** Who is here, sorted. */
  readonly present: ReadonlyArray<string>
}

/** As the CLI client: 10 attempts, 1 s doubling to 32 s. */
export const maxAttempts = 10
export const maxLines = 1000

/** Delay before reconnect attempt `attempt` (1-based): 1 s, 2 s, 4 s, ... 32 s. */
export const backoffMs = (attempt: number): number => Math.min(32_000, 1000 * 2 ** Math.max(0, attempt - 1))

export const initial: State = { user: undefined, connection: { _tag: "LoggedOut", error: undefined }, lines: [], present: [] }

const append = (state: State, line: Line): State => {
  const lines = state.lines.length >= maxLines ? state.lines.slice(state.lines.length - maxLines + 1) : state.lines.slice()
  lines.push(line)
  return { ...state, lines }
}

const info = (state: State, text: string, now: number): State =>
  append(state, { kind: "info", from: undefined, text, at: now })

/** The user asked to join: the first attempt starts. */
export const loggingIn = (state: State, user: string): State => ({
  ...state,
  user,
  connection: { _tag: "Connecting", attempt: 1 }
})

/** The server accepted the login. */
export const connected = (state: State, now: number): State =>
  info({ ...state, connection: { _tag: "Connected" } }, "connected", now)

/** The server refused the login: back to the form, with why (no reconnect). */
export const refused = (_state: State, reason: string): State => ({
  ...initial,
  connection: { _tag: "LoggedOut", error: reason }
})

/**
 * The socket closed (or could not open). `attempt` is the attempt that
 * failed; after a session that was up, counting starts again at 1. Reconnects
 * with backoff (1 s, 2 s, ... 32 s) until `maxAttempts` have failed.
 */
export const disconnected = (state: State, attempt: number, reason: string, now: number): State => {
  if (state.user === undefined) return state
  const wasUp = state.connection._tag === "Connected"
  const next: State = wasUp ? info({ ...state, present: [] }, `disconnected: ${reason}`, now) : state
  const nextAttempt = wasUp ? 1 : attempt + 1
  if (nextAttempt > maxAttempts) return { ...next, connection: { _tag: "GaveUp", reason } }
  return {
    ...next,
    connection: { _tag: "Reconnecting", attempt: nextAttempt, maxAttempts, at: now + backoffMs(nextAttempt), reason }
  }
}

/** The backoff elapsed: the next attempt starts. */
export const retrying = (state: State): State =>
  state.connection._tag === "Reconnecting"
    ? { ...state, connection: { _tag: "Connecting", attempt: state.connection.attempt } }
    : state

/** The user sent a line (shown at once, pending until its Ack). */
export const said = (state: State, id: number, text: string, now: number): State =>
  append(state, { kind: "own", from: state.user, text, at: now, id, acked: false })

const sorted = (users: ReadonlyArray<string>) => Array.from(new Set(users)).sort()

/** A message from the server (the session's; control and login answers are the controller's). */
export const received = (state: State, message: Message.Message, now: number): State => {
  switch (message._tag) {
    case "Said":
      return append(state, { kind: "said", from: message.from, text: message.text, at: message.at })
    case "Ack":
      return {
        ...state,
        lines: state.lines.map((l) => (l.kind === "own" && l.id === message.id ? { ...l, acked: true } : l))
      }
    case "Joined":
      return info({ ...state, present: sorted([...state.present, message.user]) }, `${message.user} joined`, now)
    case "Left":
      return info(
        { ...state, present: state.present.filter((u) => u !== message.user) },
        `${message.user} left (${message.reason})`,
        now
      )
    case "Present":
      return { ...state, present: sorted(message.users) }
    case "Bye":
      return info(state, `server closing the session: ${message.reason}`, now)
    case "Failure":
      return info(state, `server: ${message.message}`, now)
    default:
      return state
  }
}

/** How the status line reads: "connected", "reconnecting in 4 s, attempt 3 of 10", ... */
export const describe = (connection: Connection, now: number): string => {
  switch (connection._tag) {
    case "LoggedOut":
      return "not connected"
    case "Connecting":
      return connection.attempt === 1 ? "connecting…" : `connecting (attempt ${connection.attempt} of ${maxAttempts})…`
    case "Connected":
      return "connected"
    case "Reconnecting":
      return `reconnecting in ${Math.max(0, Math.ceil((connection.at - now) / 1000))} s, attempt ${connection.attempt} of ${connection.maxAttempts}`
    case "GaveUp":
      return `gave up: ${connection.reason}`
  }
}
