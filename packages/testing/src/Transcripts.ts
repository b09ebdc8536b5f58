/**
 * What the drop tests do with their chat clients (resume through a fault
 * proxy on one node, and across cluster nodes): record each client's
 * transcript of every room and what went wrong, get everyone into a room,
 * say numbered lines through the drops, and read a room's history as text
 * to compare the transcripts with. The assertions stay in the tests.
 */
import type * as Message from "@tether/protocol/Message"
import type * as ChatClient from "@tether/runtime/ChatClient"
import type * as History from "@tether/runtime/History"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export interface Transcript {
  readonly chat: ChatClient.ChatClient
  /** What was said in each room, as this client saw it, in order. */
  readonly said: Map<string, Array<string>>
  /** The text of each line this client said, by id. */
  readonly typed: Map<number, string>
  /** Ids of this client's lines the server acknowledged. */
  readonly acked: Array<number>
  /** Gaps, refusals, unrecoverable rooms, giving up. */
  readonly trouble: Array<string>
}

/** Records what `chat` sees of `rooms` (for as long as the scope is open). */
export const record = (chat: ChatClient.ChatClient, rooms: ReadonlyArray<string>): Effect.Effect<Transcript, never, Scope.Scope> =>
  Effect.gen(function*() {
    const transcript: Transcript = { chat, said: new Map(rooms.map((r) => [r, []])), typed: new Map(), acked: [], trouble: [] }
    yield* chat.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "Said") {
            transcript.said.get(event.room)?.push(event.said.text)
            if (event.missed !== undefined) transcript.trouble.push(`gap of ${event.missed} in ${event.room}`)
          }
          if (event._tag === "Acked") transcript.acked.push(event.id)
          if (event._tag === "Unrecoverable") transcript.trouble.push(`unrecoverable ${event.room}`)
          if (event._tag === "SayRefused") transcript.trouble.push(`refused ${event.line.text}: ${event.code}`)
          if (event._tag === "Connection" && event.state._tag === "GaveUp") transcript.trouble.push(event.state.reason)
        })
      ),
      Effect.forkScoped
    )
    return transcript
  })

/** Polls `done` every 20 ms, at most `tries` times. */
export const eventually = (done: () => Effect.Effect<boolean>, tries: number): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    for (let i = 0; i < tries; i++) {
      if (yield* done()) return true
      yield* Effect.sleep("20 millis")
    }
    return false
  })

/** Everyone in `room` (a join cut off before its answer is asked again); false if not within ~10 s. */
export const joinAll = (clients: ReadonlyArray<Transcript>, room: string): Effect.Effect<boolean> =>
  eventually(() =>
    Effect.gen(function*() {
      let all = true
      for (const { chat } of clients) {
        const mine = yield* chat.rooms
        if (mine.includes(room)) continue
        all = false
        if ((yield* chat.state)._tag === "Connected") yield* Effect.ignore(chat.join(room))
      }
      return all
    }), 500)

/** Client i says `u{i}-{k}` for k < `linesEach`, alternating `rooms`, 3 ms apart so that drops fall among them. */
export const sayLines = (clients: ReadonlyArray<Transcript>, linesEach: number, rooms: ReadonlyArray<string>) =>
  Effect.forEach(clients, ({ chat, typed }, i) =>
    Effect.forEach(Array.from({ length: linesEach }, (_, k) => k), (k) =>
      chat.say(`u${i}-${k}`, rooms[k % rooms.length]!).pipe(
        Effect.map((line) => typed.set(line.id, line.text)),
        Effect.zipRight(Effect.sleep("3 millis"))
      ), { discard: true }), { concurrency: "unbounded", discard: true })

/** Each room's whole history as the texts said, in order; undefined for a room whose history could not be recovered. */
export const histories = (history: History.History["Type"], rooms: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const out = new Map<string, Array<string> | undefined>()
    for (const room of rooms) {
      const { epoch } = yield* history.position(room)
      const recovery = yield* history.recover(room, { epoch, offset: 0 })
      out.set(room, recovery._tag === "Recovered" ? recovery.entries.map((e) => (JSON.parse(e.payload) as Message.Said).text) : undefined)
    }
    return out
  })

/** Waits (up to ~10 s) until every client has seen at least as many lines of each room as its history holds. */
export const settled = (clients: ReadonlyArray<Transcript>, texts: ReadonlyMap<string, ReadonlyArray<string> | undefined>) =>
  eventually(() =>
    Effect.succeed(clients.every((c) => [...texts].every(([room, lines]) => c.said.get(room)!.length >= (lines?.length ?? 0)))), 500)
