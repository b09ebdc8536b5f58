/**
 * The web chat page's controller and renderer: a WebSocket to `/ws` speaking
 * Tether's chat protocol (one JSON message per text message, decoded and
 * encoded by the same Schemas and codec as the TCP client, from
 * `@tether/protocol`), the state transitions of `chatState.ts`, and a
 * renderer that writes the state to the DOM with `textContent` only.
 *
 * Reconnect, resume and offline send work as in the CLI client, with the same
 * pure helpers from `@tether/runtime`: an `Outbox` holds every typed line
 * under a stable id until its `Ack` (lines typed while disconnected are sent
 * after the reconnect, in order, with their ids; the server acknowledges a
 * repeat without broadcasting it again), and a `ResumeState` holds the last
 * (epoch, offset) seen per room, sent in `Login.resume`, and drops any line
 * already shown.
 */
import * as Codec from "@tether/protocol/Codec"
import * as Message from "@tether/protocol/Message"
import * as Outbox from "@tether/runtime/Outbox"
import * as ResumeState from "@tether/runtime/ResumeState"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Chat from "./chatState.js"

const codec = Codec.json(Message.Message)
const isRoomName = Schema.is(Message.RoomName)

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const stateLine = element<HTMLSpanElement>("state")
const me = element<HTMLSpanElement>("me")
const loginForm = element<HTMLFormElement>("login")
const loginError = element<HTMLParagraphElement>("login-error")
const userInput = element<HTMLInputElement>("user")
const passwordInput = element<HTMLInputElement>("password")
const chat = element<HTMLDivElement>("chat")
const roomTitle = element<HTMLHeadingElement>("room-title")
const transcript = element<HTMLUListElement>("transcript")
const roomList = element<HTMLUListElement>("rooms")
const joinForm = element<HTMLFormElement>("join")
const roomInput = element<HTMLInputElement>("room")
const joinButton = element<HTMLButtonElement>("join-button")
const leaveButton = element<HTMLButtonElement>("leave")
const who = element<HTMLUListElement>("who")
const sayForm = element<HTMLFormElement>("say")
const textInput = element<HTMLInputElement>("text")
const sendButton = element<HTMLButtonElement>("send")

let state: Chat.State = Chat.initial
let socket: WebSocket | undefined
let password = ""
let retryTimer: number | undefined
// Ids start at random, so that a reloaded page does not reuse the ids the server still remembers.
const outbox = Outbox.unsafeMake({ firstId: crypto.getRandomValues(new Uint32Array(1))[0]! })
const resume = ResumeState.unsafeMake()

// --- rendering (textContent only: network text is never parsed as HTML) ---

const clock = (at: number) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })

const renderLine = (line: Chat.Line): HTMLLIElement => {
  const li = document.createElement("li")
  li.className = line.kind === "own"
    ? `own${line.pending === true ? " pending" : ""}${line.refused !== undefined ? " refused" : ""}`
    : line.kind
  const time = document.createElement("time")
  time.textContent = clock(line.at)
  li.append(time)
  if (line.from !== undefined) {
    const from = document.createElement("span")
    from.className = "from"
    from.textContent = line.from
    li.append(from)
  }
  const text = document.createElement("span")
  text.className = "text"
  text.textContent = line.text
  li.append(text)
  if (line.refused !== undefined) {
    const why = document.createElement("span")
    why.className = "why"
    why.textContent = `not sent: ${line.refused}`
    li.append(why)
  }
  return li
}

let renderedLines: ReadonlyArray<Chat.Line> = []

const render = () => {
  const connection = state.connection
  const tag = connection._tag
  stateLine.textContent = Chat.describe(state, Date.now())
  stateLine.dataset["state"] = tag === "Connected"
    ? "connected"
    : tag === "Reconnecting"
    ? "reconnecting"
    : tag === "GaveUp"
    ? "failed"
    : tag === "Connecting"
    ? "connecting"
    : "idle"
  const loggedIn = state.user !== undefined
  loginForm.hidden = loggedIn
  chat.hidden = !loggedIn
  me.textContent = loggedIn ? state.user! : ""
  loginError.textContent = tag === "LoggedOut" ? connection.error ?? "" : ""
  // Lines typed while disconnected wait in the outbox; joining and leaving need the server.
  sendButton.disabled = !loggedIn || tag === "GaveUp"
  joinButton.disabled = tag !== "Connected"
  leaveButton.disabled = tag !== "Connected" || !state.rooms.includes(state.current)
  roomTitle.textContent = state.current
  const room = Chat.currentRoom(state)
  if (room.lines !== renderedLines) {
    const atBottom = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 4
    // Lines are immutable: rebuild only from the first that changed.
    let same = 0
    while (same < renderedLines.length && same < room.lines.length && renderedLines[same] === room.lines[same]) same++
    if (same < renderedLines.length && renderedLines.length - same > room.lines.length) same = 0
    while (transcript.children.length > same) transcript.lastElementChild!.remove()
    const fragment = document.createDocumentFragment()
    for (let i = same; i < room.lines.length; i++) fragment.append(renderLine(room.lines[i]!))
    transcript.append(fragment)
    renderedLines = room.lines
    if (atBottom) transcript.scrollTop = transcript.scrollHeight
  }
  roomList.replaceChildren(...state.rooms.map((name) => {
    const li = document.createElement("li")
    const button = document.createElement("button")
    button.type = "button"
    button.textContent = name
    button.dataset["room"] = name
    if (name === state.current) button.setAttribute("aria-current", "true")
    li.append(button)
    return li
  }))
  who.replaceChildren(...room.present.map((user) => {
    const li = document.createElement("li")
    li.textContent = user
    return li
  }))
}

const update = (next: Chat.State) => {
  state = next
  render()
}

// --- the connection ---

const send = (message: Message.Message) => {
  const text = codec.encodeText!(message)
  if (typeof text === "string" && socket?.readyState === WebSocket.OPEN) socket.send(text)
}

const sendLine = (line: Outbox.Line) => send({ _tag: "Say", id: line.id, text: line.text, room: line.room })

/** A retryable refusal: the line stays queued and goes again (same id) after `retryAfter`. */
const resendLater = (id: number, afterMs: number) =>
  window.setTimeout(() => {
    const line = outbox.pending().find((l) => l.id === id)
    if (line !== undefined && state.connection._tag === "Connected") sendLine(line)
  }, Math.min(60_000, Math.max(100, afterMs)))

const fromServer = (message: Message.Message) => {
  // Exactly once: a Said at or before the room's last seen offset is not shown again.
  const observed = resume.receive(message)
  switch (message._tag) {
    case "Ack":
      outbox.ack(message.id)
      break
    case "SayRefused":
      if (Message.isRetryable(message.code)) resendLater(message.id, message.retryAfter ?? 1000)
      else outbox.drop(message.id)
      break
    case "RoomJoined":
    case "Recovered":
    case "Unrecoverable":
      send({ _tag: "Who", room: message.room })
      break
  }
  update(Chat.received(state, message, Date.now(), observed))
}

// The last session's resume secret (from its LoginResult), presented at the
// next login of the same name: the server then hands the session over at once
// if it has not yet seen the old connection drop. Kept in memory only.
let lastSession: { readonly user: string; readonly secret: string } | undefined

const connect = (attempt: number) => {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`
  const ws = new WebSocket(url)
  socket = ws
  let loggedIn = false
  let refusedReason: string | undefined
  let refusedStatus = 0
  ws.onopen = () => {
    // Resume every room at the last position seen; none yet: start in #lobby.
    const positions = resume.positions()
    const secret = lastSession?.user === state.user ? lastSession!.secret : undefined
    send({
      _tag: "Login",
      user: state.user!,
      password,
      ...(positions.length > 0 ? { resume: positions } : {}),
      ...(secret !== undefined ? { resumeSecret: secret } : {})
    })
  }
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") return
    const message = codec.decodeText!(event.data)
    if (message instanceof Codec.DecodeError) {
      console.warn("undecodable message from the server", message.message)
      return
    }
    switch (message._tag) {
      case "Ping":
        return send({ _tag: "Pong", seq: message.seq })
      case "LoginResult":
        if (message.status === 0) {
          loggedIn = true
          lastSession = message.resumeSecret !== undefined ? { user: state.user!, secret: message.resumeSecret } : undefined
          update(Chat.connected(state, Date.now()))
          // What was typed while disconnected, in order, with the original ids.
          for (const line of outbox.pending()) sendLine(line)
        } else {
          refusedStatus = message.status
          refusedReason = message.reason ?? (message.status === 100 ? "that name is in use" : "login refused")
        }
        return
      default:
        return fromServer(message)
    }
  }
  ws.onclose = (event) => {
    if (socket !== ws) return
    socket = undefined
    if (state.user === undefined) return
    if (refusedReason !== undefined) update(Chat.loginRefused(state, attempt, refusedStatus, refusedReason, Date.now()))
    else {
      const reason = event.reason.length > 0 ? event.reason : loggedIn ? "connection closed" : "cannot connect"
      update(Chat.disconnected(state, attempt, reason, Date.now()))
    }
    scheduleRetry()
  }
}

const scheduleRetry = () => {
  const connection = state.connection
  if (connection._tag !== "Reconnecting") return
  clearTimeout(retryTimer)
  retryTimer = window.setTimeout(() => {
    update(Chat.retrying(state))
    if (state.connection._tag === "Connecting") connect(state.connection.attempt)
  }, Math.max(0, connection.at - Date.now()))
}

// The countdown in the status line.
window.setInterval(() => {
  if (state.connection._tag === "Reconnecting") render()
}, 250)

loginForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const user = userInput.value.trim()
  password = passwordInput.value
  if (user.length === 0 || password.length === 0) return
  update(Chat.loggingIn(state, user))
  connect(1)
})

sayForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const text = textInput.value
  if (text.length === 0 || state.user === undefined || state.connection._tag === "GaveUp") return
  const queued = outbox.offer(state.current, text)
  if (Either.isLeft(queued)) return update(Chat.note(state, queued.left.message, Date.now()))
  const line = queued.right
  update(Chat.said(state, line.room, line.id, line.text, Date.now()))
  if (state.connection._tag === "Connected") sendLine(line)
  textInput.value = ""
})

joinForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const typed = roomInput.value.trim().toLowerCase()
  const name = typed.startsWith("#") ? typed : `#${typed}`
  if (!isRoomName(name)) return update(Chat.note(state, `not a room name: ${name} (# and 1 to 32 of a-z, 0-9, _ and -)`, Date.now()))
  if (state.rooms.includes(name)) update(Chat.switchTo(state, name))
  else send({ _tag: "Join", room: name })
  roomInput.value = ""
})

leaveButton.addEventListener("click", () => send({ _tag: "Leave", room: state.current }))

roomList.addEventListener("click", (event) => {
  const target = event.target
  if (target instanceof HTMLButtonElement && target.dataset["room"] !== undefined) {
    update(Chat.switchTo(state, target.dataset["room"]))
  }
})

render()
