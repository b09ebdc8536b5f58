/**
 * The web chat page's controller and renderer: a WebSocket to `/ws` speaking
 * Tether's chat protocol (one JSON message per text message, decoded and
 * encoded by the same Schemas and codec as the TCP client, from
 * `@tether/protocol`), the state transitions of `chatState.ts`, and a
 * renderer that writes the state to the DOM with `textContent` only.
 */
import * as Codec from "@tether/protocol/Codec"
import * as Message from "@tether/protocol/Message"
import * as Chat from "./chatState.js"

const codec = Codec.json(Message.Message)

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const stateLine = element<HTMLSpanElement>("state")
const me = element<HTMLSpanElement>("me")
const loginForm = element<HTMLFormElement>("login")
const loginError = element<HTMLParagraphElement>("login-error")
const userInput = element<HTMLInputElement>("user")
const passwordInput = element<HTMLInputElement>("password")
const chat = element<HTMLDivElement>("chat")
const transcript = element<HTMLUListElement>("transcript")
const who = element<HTMLUListElement>("who")
const sayForm = element<HTMLFormElement>("say")
const textInput = element<HTMLInputElement>("text")
const sendButton = element<HTMLButtonElement>("send")

let state: Chat.State = Chat.initial
let socket: WebSocket | undefined
let password = ""
let nextId = 1
let retryTimer: number | undefined

// --- rendering (textContent only: network text is never parsed as HTML) ---

const clock = (at: number) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })

const renderLine = (line: Chat.Line): HTMLLIElement => {
  const li = document.createElement("li")
  li.className = line.kind === "own" ? `own${line.acked ? "" : " pending"}` : line.kind
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
  return li
}

let renderedLines: ReadonlyArray<Chat.Line> = []

const render = () => {
  const connection = state.connection
  const tag = connection._tag
  stateLine.textContent = Chat.describe(connection, Date.now())
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
  sendButton.disabled = tag !== "Connected"
  if (state.lines !== renderedLines) {
    const atBottom = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 4
    // Lines are immutable: rebuild only from the first that changed.
    let same = 0
    while (same < renderedLines.length && same < state.lines.length && renderedLines[same] === state.lines[same]) same++
    if (same < renderedLines.length && renderedLines.length - same > state.lines.length) same = 0
    while (transcript.children.length > same) transcript.lastElementChild!.remove()
    const fragment = document.createDocumentFragment()
    for (let i = same; i < state.lines.length; i++) fragment.append(renderLine(state.lines[i]!))
    transcript.append(fragment)
    renderedLines = state.lines
    if (atBottom) transcript.scrollTop = transcript.scrollHeight
  }
  who.replaceChildren(...state.present.map((user) => {
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

const connect = (attempt: number) => {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`
  const ws = new WebSocket(url)
  socket = ws
  let loggedIn = false
  let refusedReason: string | undefined
  ws.onopen = () => send({ _tag: "Login", user: state.user!, password })
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
          update(Chat.connected(state, Date.now()))
          send({ _tag: "Who" })
        } else {
          refusedReason = message.reason ?? (message.status === 100 ? "that name is in use" : "login refused")
        }
        return
      default:
        return update(Chat.received(state, message, Date.now()))
    }
  }
  ws.onclose = (event) => {
    if (socket !== ws) return
    socket = undefined
    if (refusedReason !== undefined) return update(Chat.refused(state, refusedReason))
    if (state.user === undefined) return
    const reason = event.reason.length > 0 ? event.reason : loggedIn ? "connection closed" : "cannot connect"
    update(Chat.disconnected(state, attempt, reason, Date.now()))
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
  if (text.length === 0 || state.connection._tag !== "Connected") return
  const id = nextId++
  send({ _tag: "Say", id, text })
  update(Chat.said(state, id, text, Date.now()))
  textInput.value = ""
})

render()
