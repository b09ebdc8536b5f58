/**
 * The web chat's state, apart from rendering and from the socket: what the
 * page shows is a function of this value, and every change is one of the
 * pure transitions below (unit-testable without a DOM).
 *
 * What is not here, because `@tether/runtime` already has it (pure and
 * tested, shared with the CLI client): the offline send buffer (`Outbox`:
 * stable ids, removed only on `Ack`, bounded) and the positions per room
 * (`ResumeState`: what `Login.resume` carries, and the rule that shows each
 * line once). The controller (`chat.ts`) owns one of each and hands
 * {@link received} what the `ResumeState` made of each message.
 */
import * as Message from "@tether/protocol/Message"
import * as ResumeState from "@tether/runtime/ResumeState"

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

/**
 * One transcript line. `own` lines are the user's: `pending` until the
 * server has the line (its `Ack`, or its `Said` coming back), `refused`
 * with why when the server will not take it.
 */
export interface Line {
  readonly kind: "said" | "own" | "info"
  readonly from: string | undefined
  readonly text: string
  readonly at: number
  /** For own lines: the Say id (the Outbox's, kept on every resend). */
  readonly id?: number
  readonly pending?: boolean
  /** For own lines: its `Said` came back (it now stands where the room's order puts it). */
  readonly echoed?: boolean
  readonly refused?: string
}

/** A room the session is in: its transcript and who is here. */
export interface Room {
  readonly lines: ReadonlyArray<Line>
  /** Who is here, sorted. */
  readonly present: ReadonlyArray<string>
}

export interface State {
  readonly user: string | undefined
  readonly connection: Connection
  /** The rooms the session is in, in the order joined. */
  readonly rooms: ReadonlyArray<string>
  readonly room: Readonly<Record<string, Room>>
  /** The room shown (and where a typed line goes). */
  readonly current: string
  /** What the last reconnect recovered, per resumed room (shown in the status line). */
  readonly notices: ReadonlyArray<string>
}

/** As the CLI client: 10 attempts, 1 s doubling to 32 s. */
export const maxAttempts = 10
/** Lines kept per room. */
export const maxLines = 1000
export const lobby = Message.defaultRoom

/** Delay before reconnect attempt `attempt` (1-based): 1 s, 2 s, 4 s, ... 32 s. */
export const backoffMs = (attempt: number): number => Math.min(32_000, 1000 * 2 ** Math.max(0, attempt - 1))

const emptyRoom: Room = { lines: [], present: [] }

export const initial: State = {
  user: undefined,
  connection: { _tag: "LoggedOut", error: undefined },
  rooms: [],
  room: {},
  current: lobby,
  notices: []
}

/** The current room's transcript and who is here. */
export const currentRoom = (state: State): Room => state.room[state.current] ?? emptyRoom

const withRoom = (state: State, name: string, f: (room: Room) => Room): State => ({
  ...state,
  room: { ...state.room, [name]: f(state.room[name] ?? emptyRoom) }
})

const appendTo = (lines: ReadonlyArray<Line>, line: Line): ReadonlyArray<Line> => {
  const next = lines.length >= maxLines ? lines.slice(lines.length - maxLines + 1) : lines.slice()
  next.push(line)
  return next
}

const append = (state: State, name: string, line: Line): State =>
  withRoom(state, name, (room) => ({ ...room, lines: appendTo(room.lines, line) }))

const info = (state: State, name: string, text: string, now: number): State =>
  append(state, name, { kind: "info", from: undefined, text, at: now })

/** An info line in every room the session is in (or the current one before any). */
const infoAll = (state: State, text: string, now: number): State =>
  (state.rooms.length === 0 ? [state.current] : state.rooms).reduce((s, name) => info(s, name, text, now), state)

const setPresent = (state: State, name: string, users: ReadonlyArray<string>): State =>
  withRoom(state, name, (room) => ({ ...room, present: Array.from(new Set(users)).sort() }))

const member = (state: State, name: string): State =>
  state.rooms.includes(name) ? state : withRoom({ ...state, rooms: [...state.rooms, name] }, name, (room) => room)

/** The user asked to join: the first attempt starts. */
export const loggingIn = (state: State, user: string): State => ({
  ...state,
  user,
  connection: { _tag: "Connecting", attempt: 1 }
})

/** The server accepted the login; what it recovered is told next (notices start empty). */
export const connected = (state: State, now: number): State =>
  infoAll({ ...state, connection: { _tag: "Connected" }, notices: [] }, "connected", now)

/** The server refused the login: back to the form, with why (no reconnect). */
export const refused = (_state: State, reason: string): State => ({
  ...initial,
  connection: { _tag: "LoggedOut", error: reason }
})

/**
 * The server refused the login of attempt `attempt`. On a reconnect (the
 * session has rooms), "already connected" (status 100) means the server has
 * not yet noticed that the old connection is gone (it will, at its heartbeat
 * timeout): that counts as a failed attempt, with backoff. Anything else, or
 * on the first login: back to the form.
 */
export const loginRefused = (state: State, attempt: number, status: number, reason: string, now: number): State =>
  status === 100 && state.rooms.length > 0 ? disconnected(state, attempt, reason, now) : refused(state, reason)

/**
 * The socket closed (or could not open). `attempt` is the attempt that
 * failed; after a session that was up, counting starts again at 1. Reconnects
 * with backoff (1 s, 2 s, ... 32 s) until `maxAttempts` have failed. Rooms,
 * transcripts and pending lines stay: the reconnect resumes them.
 */
export const disconnected = (state: State, attempt: number, reason: string, now: number): State => {
  if (state.user === undefined) return state
  const wasUp = state.connection._tag === "Connected"
  const next: State = wasUp
    ? infoAll(
      { ...state, notices: [], room: Object.fromEntries(Object.entries(state.room).map(([k, r]) => [k, { ...r, present: [] }])) },
      `disconnected: ${reason}`,
      now
    )
    : state
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

/**
 * The user typed a line, queued in the Outbox under `id` for `room`: shown
 * at once as pending, connected or not (it is sent now, or after the
 * reconnect, with this id).
 */
export const said = (state: State, room: string, id: number, text: string, now: number): State =>
  append(state, room, { kind: "own", from: state.user, text, at: now, id, pending: true })

/** A note for the user in the current room (a line the Outbox refused, a bad room name). */
export const note = (state: State, why: string, now: number): State => info(state, state.current, why, now)

/** Shows `name` (a room the session is in). */
export const switchTo = (state: State, name: string): State =>
  state.rooms.includes(name) ? { ...state, current: name } : state

const mapOwn = (state: State, id: number, f: (line: Line) => Line): State => {
  let changed = state
  for (const name of state.rooms) {
    const room = state.room[name]
    if (room === undefined || !room.lines.some((l) => l.kind === "own" && l.id === id)) continue
    changed = withRoom(changed, name, (r) => ({ ...r, lines: r.lines.map((l) => (l.kind === "own" && l.id === id ? f(l) : l)) }))
  }
  return changed
}

/**
 * The user's own line came back as a `Said` (every member of a room gets its
 * lines, the sender too): the pending line with that text leaves its place
 * and the line is shown where the room's order puts it, no longer pending.
 */
const ownSaid = (state: State, name: string, message: Message.Said): State | undefined => {
  const room = state.room[name]
  if (room === undefined) return undefined
  const index = room.lines.findIndex((l) => l.kind === "own" && l.echoed !== true && l.refused === undefined && l.text === message.text)
  if (index < 0) return undefined
  const line = room.lines[index]!
  const lines = room.lines.filter((_, i) => i !== index)
  return withRoom(state, name, (r) => ({
    ...r,
    lines: appendTo(lines, { ...line, at: message.at, pending: false, echoed: true })
  }))
}

/**
 * A message from the server (the session's; control and login answers are
 * the controller's), with what the page's `ResumeState` made of it
 * (`resume.receive(message)`): a line it calls a duplicate is not shown
 * again, which makes the display exactly once across replays and resends.
 */
export const received = (
  state: State,
  message: Message.Message,
  now: number,
  observed?: ResumeState.Observation
): State => {
  if (observed !== undefined && !ResumeState.isShown(observed)) return state
  switch (message._tag) {
    case "Said": {
      const name = message.room ?? lobby
      if (message.from === state.user) {
        const own = ownSaid(state, name, message)
        if (own !== undefined) return own
      }
      return append(state, name, { kind: "said", from: message.from, text: message.text, at: message.at })
    }
    case "Ack":
      return mapOwn(state, message.id, (l) => ({ ...l, pending: false }))
    case "SayRefused":
      return Message.isRetryable(message.code)
        ? state
        : mapOwn(state, message.id, (l) => ({ ...l, pending: false, refused: message.detail ?? message.code }))
    case "RoomJoined": {
      const fresh = !state.rooms.includes(message.room)
      const next = member(state, message.room)
      return fresh ? info({ ...next, current: message.room }, message.room, `you joined ${message.room}`, now) : next
    }
    case "RoomLeft": {
      const rooms = state.rooms.filter((r) => r !== message.room)
      const { [message.room]: _gone, ...room } = state.room
      const current = state.current === message.room ? rooms[0] ?? lobby : state.current
      return { ...state, rooms, room, current }
    }
    case "RoomRefused":
      return info(state, state.current, `${message.room}: ${message.detail ?? message.code}`, now)
    case "Recovered": {
      const next = member(state, message.room)
      if (message.replayed === 0) return next
      const text = `${message.replayed} missed message${message.replayed === 1 ? "" : "s"} replayed in ${message.room}`
      return info({ ...next, notices: [...next.notices, text] }, message.room, text, now)
    }
    case "Unrecoverable": {
      const next = member(state, message.room)
      const text = `missed messages in ${message.room} could not be recovered`
      return info({ ...next, notices: [...next.notices, text] }, message.room, text, now)
    }
    case "Joined": {
      const name = message.room ?? lobby
      const present = state.room[name]?.present ?? []
      return info(setPresent(state, name, [...present, message.user]), name, `${message.user} joined`, now)
    }
    case "Left": {
      const name = message.room ?? lobby
      const present = (state.room[name]?.present ?? []).filter((u) => u !== message.user)
      return info(setPresent(state, name, present), name, `${message.user} left (${message.reason})`, now)
    }
    case "Present":
      return setPresent(state, message.room ?? lobby, message.users)
    case "Bye":
      return infoAll(state, `server closing the session: ${message.reason}`, now)
    case "Failure":
      return infoAll(state, `server: ${message.message}`, now)
    default:
      return state
  }
}

/**
 * How the status line reads: "connected", "connected · 12 missed messages
 * replayed in #lobby", "reconnecting in 4 s, attempt 3 of 10", ...
 */
export const describe = (state: Pick<State, "connection" | "notices">, now: number): string => {
  const connection = state.connection
  switch (connection._tag) {
    case "LoggedOut":
      return "not connected"
    case "Connecting":
      return connection.attempt === 1 ? "connecting…" : `connecting (attempt ${connection.attempt} of ${maxAttempts})…`
    case "Connected":
      return state.notices.length === 0 ? "connected" : `connected · ${state.notices.join(" · ")}`
    case "Reconnecting":
      return `reconnecting in ${Math.max(0, Math.ceil((connection.at - now) / 1000))} s, attempt ${connection.attempt} of ${connection.maxAttempts}`
    case "GaveUp":
      return `gave up: ${connection.reason}`
  }
}
