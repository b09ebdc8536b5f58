/**
 * A Tether chat client: rooms, lines that survive disconnects, and resume
 * with exactly-once display, with everything that happens as typed
 * {@link Event}s, so an Effect app needs no text parsing.
 *
 * - **Rooms**: `join` / `leave` / `listRooms` / `who`; a current room (the
 *   last one joined through `join`, `#lobby` at first) where `say` goes by
 *   default.
 * - **Lines survive disconnects**: `say` queues the line in an `Outbox`
 *   (bounded: 1,000 by default, then `OutboxFull`) and sends it when
 *   connected. A line leaves the outbox only on its `Ack`. After each login
 *   the lines still waiting are sent again, in order, with their original
 *   ids (the server acknowledges a repeat without showing it twice); a
 *   retryable `SayRefused` (`RateLimited`, `Unavailable`) keeps the line,
 *   holds back the lines typed after it, and after `retryAfter` sends them
 *   all again in order.
 * - **Resume**: each login presents the last (epoch, offset) seen in each
 *   room (`ResumeState`); the server replays what was missed
 *   (`Replayed { room, count }` once the replayed lines are in) or says it
 *   cannot (`Unrecoverable`).
 * - **Exactly-once display**: a `Said` at or before the last offset seen in
 *   its room is dropped, never shown twice.
 *
 * @example
 * ```ts
 * const chat = yield* ChatClient.make({
 *   connect: [NodeTether.connect({ port: 7373 }), NodeTether.connect({ port: 7374 })],
 *   user: "alice",
 *   password: "secret"
 * })
 * yield* chat.events.pipe(Stream.runForEach((event) => Console.log(event)), Effect.forkScoped)
 * const line = yield* chat.say("hello")       // queued even while disconnected
 * yield* chat.awaitAck(line.id)               // acknowledged: durable on the server
 * ```
 *
 * @since 0.2.0
 */
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Client from "./Client.js"
import type * as Heartbeat from "./Heartbeat.js"
import * as ChatLoop from "./internal/chatClient.js"
import type * as Outbox from "./Outbox.js"

/**
 * What the chat client tells its app, in the order it happened:
 * - `Connection`: the connection's state changed (connected, reconnecting in
 *   N ms attempt k of n, gave up, ...);
 * - `Said`: a line of `room`, shown once; `replayed` when it was missed and
 *   replayed after a reconnect; `missed` when lines were skipped before it (a
 *   server that broke its promise: never expected);
 * - `Replayed`: a resumed room's `count` missed lines have all been shown;
 * - `Unrecoverable`: a resumed room's missed lines could not be had;
 * - `QueuedSent`: `count` lines that waited (typed while disconnected, or
 *   sent but not acknowledged before a drop) were sent and acknowledged;
 * - `Acked`: the line `id` is durable on the server;
 * - `SayRefused`: the line was refused for good (e.g. `NotMember`) and dropped;
 * - `RoomJoined` / `RoomLeft` / `RoomRefused` / `RoomList`: answers about this
 *   session's rooms; `Joined` / `Left` / `Present`: the other members;
 * - `Notice`: the server's `Bye` or `Failure`.
 *
 * @since 0.2.0
 * @category models
 */
export type Event =
  | { readonly _tag: "Connection"; readonly state: Client.State }
  | {
    readonly _tag: "Said"
    readonly room: string
    readonly said: Message.Said
    readonly replayed: boolean
    readonly missed?: number
  }
  | { readonly _tag: "Replayed"; readonly room: string; readonly count: number }
  | {
    readonly _tag: "Unrecoverable"
    readonly room: string
    readonly reason: Message.Unrecoverable["reason"]
  }
  | { readonly _tag: "QueuedSent"; readonly count: number }
  | { readonly _tag: "Acked"; readonly id: number; readonly room: string; readonly offset?: number }
  | {
    readonly _tag: "SayRefused"
    readonly line: Outbox.Line
    readonly code: Message.SayRefusedCode
    readonly detail?: string
  }
  | { readonly _tag: "RoomJoined"; readonly room: string; readonly current: boolean }
  | { readonly _tag: "RoomLeft"; readonly room: string }
  | {
    readonly _tag: "RoomRefused"
    readonly room: string
    readonly code: Message.RoomRefused["code"]
    readonly detail?: string
  }
  | { readonly _tag: "RoomList"; readonly rooms: ReadonlyArray<string> }
  | { readonly _tag: "Joined"; readonly room: string; readonly user: string }
  | { readonly _tag: "Left"; readonly room: string; readonly user: string; readonly reason: string }
  | { readonly _tag: "Present"; readonly room: string; readonly users: ReadonlyArray<string> }
  | { readonly _tag: "Notice"; readonly message: Message.Bye | Message.Failure }

/**
 * A line the server refused for good (not retryable): it was dropped from
 * the outbox.
 *
 * @since 0.2.0
 * @category errors
 */
export class SayRejected extends Data.TaggedError("SayRejected")<{
  readonly id: number
  readonly code: Message.SayRefusedCode
  readonly detail: string
}> {
  override get message(): string {
    return `line ${this.id} refused: ${this.code}${this.detail ? `: ${this.detail}` : ""}`
  }
}

/**
 * Input that no server would take (a line over the text limit, a bad room
 * name): refused before it is queued.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly detail: string }> {
  override get message(): string {
    return this.detail
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** One server, or several tried in turn (see `Client.Options.connect`). */
  readonly connect: Client.Connect | ReadonlyArray<Client.Connect>
  readonly user: string
  /** The password; or `{ token }`: a signed login token instead. */
  readonly password: string | { readonly token: string }
  /** Default: answer pings, fail after 17 s of silence. */
  readonly heartbeat?: Heartbeat.Policy
  /** Default: `Client`'s schedule (1 s x2 jittered, capped at 32 s, 10 attempts); `false`: none. */
  readonly reconnect?: Client.Reconnect | false
  /** Lines waiting for their `Ack` at most (default `Outbox.defaultCapacity`, 1,000). */
  readonly outboxCapacity?: number
  /** The first line id (default: drawn at random, so a restarted client does not reuse ids). */
  readonly firstId?: number
  /** Wait before resending a retryable refusal that names no `retryAfter` (default 1 s). */
  readonly retryAfter?: Duration.DurationInput
  /** Events a slow reader may fall behind before the client waits for it (default 4,096). */
  readonly eventCapacity?: number
  /** Default: length-prefixed frames, 1 MiB at most. */
  readonly framing?: Frame.Framing
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ChatClient {
  readonly user: string
  /**
   * Everything that happens, typed. A subscriber first gets up to the last
   * {@link eventReplay} events (so one started right after `make` misses
   * nothing), then each new one; a reader more than `eventCapacity` behind
   * holds up the client's reading, never loses an event.
   */
  readonly events: Stream.Stream<Event>
  /**
   * Queues `text` for `room` (default: the current room) and sends it if
   * connected. Works while disconnected; fails with `OutboxFull` when
   * `outboxCapacity` lines already wait, and nothing is dropped.
   */
  readonly say: (text: string, room?: string) => Effect.Effect<Outbox.Line, Outbox.OutboxFull | InvalidInput>
  /**
   * Waits until the line `id` is acknowledged (at once if it no longer
   * waits); fails with `SayRejected` if the server refused it for good.
   */
  readonly awaitAck: (id: number) => Effect.Effect<void, SayRejected>
  /** Waits until no line waits for its `Ack`. */
  readonly awaitDrained: Effect.Effect<void>
  /** Joins `room`; once joined (`RoomJoined`) it becomes the current room. */
  readonly join: (room: string) => Effect.Effect<void, Client.ConnectionLost | InvalidInput>
  /** Leaves `room` (default: the current room). */
  readonly leave: (room?: string) => Effect.Effect<void, Client.ConnectionLost | InvalidInput>
  /** Asks which rooms this session is in (answered by a `RoomList` event). */
  readonly listRooms: Effect.Effect<void, Client.ConnectionLost>
  /** Asks who is in `room` (default: the current room; answered by a `Present` event). */
  readonly who: (room?: string) => Effect.Effect<void, Client.ConnectionLost | InvalidInput>
  /** The room `say` goes to by default. */
  readonly currentRoom: Effect.Effect<string>
  /** The rooms this client knows it is in. */
  readonly rooms: Effect.Effect<ReadonlyArray<string>>
  /** Lines waiting for their `Ack`. */
  readonly queued: Effect.Effect<number>
  readonly state: Effect.Effect<Client.State>
  readonly awaitConnected: Effect.Effect<void, Client.ConnectionLost | Client.LoginRefused>
  /** Ends the client (what waits in the outbox is not sent). */
  readonly close: Effect.Effect<void>
}

/**
 * How many past events a new `events` subscriber gets first.
 *
 * @since 0.2.0
 * @category defaults
 */
export const eventReplay = 256

/**
 * The default framing and codec of Tether's chat.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultCodec: Codec.Codec<Message.Message> = Codec.json(Message.Message)

/**
 * Starts a chat client in the background of the current scope; closing the
 * scope closes it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<ChatClient, never, Scope.Scope> =>
  ChatLoop.make(options, options.framing ?? Frame.lengthPrefixed(), defaultCodec)
