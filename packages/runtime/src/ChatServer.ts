/**
 * Tether's chat, served: login, rooms, a numbered history per room, resume
 * with replay after a reconnect, `Ack` only once a line is in the history,
 * repeats acknowledged without a second broadcast, and who is here. It runs
 * on `Server.make` and the {@link History.History} and
 * {@link Presence.Presence} services: in memory by default (one process), on
 * Redis in cluster mode (`@tether/redis`), the same code either way.
 *
 * Delivery: each node subscribes once to each room that has members on it
 * and fans every entry out to its local members, in offset order; a session
 * resuming a room gets a `Replay` gate, so the missed lines come first and
 * the live ones follow with no gap and no repeat at the seam. A line goes to
 * every member of its room, its sender included (the sender's position moves
 * with it, as everyone's does). A session's `Say`s are published back to
 * back, in arrival order, each with an idempotency key (a resend to another
 * node after a failover is acknowledged, not published again). `Joined` /
 * `Left` go to this node's members and, through `Presence.announce`, to the
 * other nodes'.
 *
 * @since 0.2.0
 */
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Connection from "./Connection.js"
import * as Dedupe from "./Dedupe.js"
import * as ChatLine from "./internal/chatLine.js"
import { ChatRooms } from "./internal/chatRooms.js"
import type * as Heartbeat from "./Heartbeat.js"
import * as History from "./History.js"
import * as Presence from "./Presence.js"
import * as Publishing from "./internal/publishing.js"
import * as RoomFanout from "./internal/roomFanout.js"
import * as Server from "./Server.js"
import type { Session } from "./Session.js"
import * as TetherProtocol from "./TetherProtocol.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly heartbeat?: Heartbeat.Policy
  readonly maxFrameBytes?: number
  readonly loginTimeout?: Server.Options<Message.Message, never, never>["loginTimeout"]
  readonly maxConnections?: number
  readonly drainTimeout?: Server.Options<Message.Message, never, never>["drainTimeout"]
  readonly driver?: Connection.Driver
  readonly outbound?: Connection.OutboundOptions
  /** Rooms one session may be in at once (default `Message.maxRoomsPerSession`, 32). */
  readonly maxRoomsPerSession?: number
  /**
   * `Joined` / `Left` notices are told while a room has at most this many
   * members on this node (default 200): in a big room every login would
   * otherwise cost a message to every member (n^2 for a crowd arriving).
   */
  readonly announceUpTo?: number
  /** Names listed at most in one `Present` (default 1,000): a `Who` costs a bounded amount. */
  readonly whoLimit?: number
  /** Names this node in session keys (cluster mode: unique per node; default random). */
  readonly nodeId?: string
  /** Bounds of the in-memory history, when the context has no `History` (default `History.defaultLimits`). */
  readonly historyLimits?: Partial<History.Limits>
  /** How long a failed `Say` should wait before it is resent (default 1 s). */
  readonly retryAfterMs?: number
  /** See `Server.Options.maxPending` / `maxPendingPerAddress`. */
  readonly maxPending?: number
  readonly maxPendingPerAddress?: number
  /** See `Server.Options.maxLoginBytes`. */
  readonly maxLoginBytes?: number
  /**
   * Each session's rate (default {@link defaultRateLimit}; `false`: none). Over
   * it a `Say` gets `SayRefused { code: "RateLimited", retryAfter }`, anything
   * else a `Failure { code: "RateLimited" }`; a `Who` costs 10 messages.
   */
  readonly rateLimit?: { readonly messagesPerSecond: number; readonly burst: number; readonly bytesPerSecond?: number } | false
}

/**
 * The default per-session rate: 50 messages a second with bursts of 100, and
 * 1 MiB a second of input.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultRateLimit = { messagesPerSecond: 50, burst: 100, bytesPerSecond: 1024 * 1024 } as const

/**
 * The default outbound bound of a chat session, in bytes (a slow reader is
 * closed past it).
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultOutboundBytes = 4 * 1024 * 1024

/**
 * A room's activity on this node: its members here, and the lines of its
 * history this node received since the previous look (in cluster mode the
 * room's lines from every node).
 *
 * @since 0.2.0
 * @category models
 */
export interface RoomActivity {
  readonly room: string
  readonly members: number
  readonly lines: number
}

/**
 * The chat server: a `Server` and a look at its rooms.
 *
 * @since 0.2.0
 * @category models
 */
export interface ChatServer extends Server.Server<Message.Message> {
  /**
   * The `limit` busiest rooms by lines since the previous call (ties: more
   * members first) and how many rooms have members on this node. Each room
   * counts its lines as they are delivered; this call reads the counters, in
   * one pass, keeping at most `limit` rows. For one reader (the dashboard):
   * each call starts the next window.
   */
  readonly roomActivity: (limit: number) => { readonly rooms: number; readonly busiest: ReadonlyArray<RoomActivity> }
}

/**
 * The default outbound bound of a chat session, in messages. A resume queues
 * its whole replay at once (up to a history's worth of lines per room), so
 * the count is set far above the connection's default of 1,024, which a
 * client away for a few seconds from a busy room would exceed: closed as a
 * slow consumer, it would reconnect to an even longer replay, again and
 * again. The bytes bound is the one that holds memory.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultOutboundMessages = 64 * 1024

type Position = { readonly room: string; readonly epoch: string; readonly offset: number }

const lobby = Message.defaultRoom

/**
 * Serves the chat on the `SocketServer` in context, until the scope closes
 * (then it drains, as `Server.make` does). Without `History` / `Presence`
 * in context it keeps both in memory.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<ChatServer, never, SocketServer.SocketServer | Server.Authenticator | Scope.Scope> =>
  Effect.gen(function*() {
    const history = yield* Option.match(yield* Effect.serviceOption(History.History), {
      onNone: () => History.makeMemory(options.historyLimits),
      onSome: Effect.succeed
    })
    const presence = yield* Option.match(yield* Effect.serviceOption(Presence.Presence), {
      onNone: () => Presence.makeMemory,
      onSome: Effect.succeed
    })
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const serverScope = yield* Effect.scope
    const dedupe = Dedupe.unsafeMake<Position>(now)
    const nodeId = options.nodeId ?? Math.random().toString(36).slice(2, 10)
    const maxRooms = options.maxRoomsPerSession ?? Message.maxRoomsPerSession
    const whoLimit = options.whoLimit ?? 1_000
    const announceUpTo = options.announceUpTo ?? 200
    const retryAfter = options.retryAfterMs ?? 1_000
    const codec = Codec.json(Message.Message)
    const textOf = (message: Message.Message): string => {
      const text = codec.encodeText!(message)
      if (typeof text !== "string") throw text
      return text
    }
    // The shortcut must write what the codec writes: checked once, a defect at start if not.
    const sample = { from: "ann", text: "hi \"there\"\n", at: 5, seq: 0, room: "#r", epoch: "e1", offset: 7 }
    if (ChatLine.saidText(sample.from, sample.text, sample.room, sample, sample.at) !== textOf(Message.Said.make(sample))) {
      return yield* Effect.dieMessage("ChatServer: the Said shortcut no longer matches the JSON codec")
    }
    // Says are published without waiting for the previous one (see `say`).
    const publishing = yield* Publishing.make(history)
    const sessionKey = (session: Session<Message.Message>) => `${nodeId}:${session.id}`
    const fanout = new RoomFanout.RoomFanout(history, serverScope, announceUpTo)
    const rooms = new ChatRooms(fanout, history, presence, { maxRooms, whoLimit })

    /** Answers owed to repeats of a `Say` that arrived while its first copy was being published. */
    const repeats = new Map<string, Array<(at: Position | undefined) => void>>()

    const say = (session: Session<Message.Message>, message: Message.Say): Effect.Effect<void> | void => {
      const name = message.room ?? lobby
      const user = session.user!
      if (!rooms.roomsOf(session).has(name)) {
        session.unsafeSend(Message.SayRefused.make({ id: message.id, code: "NotMember", detail: `not in ${name}` }))
        return
      }
      const seen = dedupe.begin(user, message.id, `${name}\n${message.text}`)
      if (seen._tag === "Done") {
        session.unsafeSend(Message.Ack.make({ id: message.id, ...seen.value }))
        return
      }
      const key = `${user}\u0000${message.id}`
      if (seen._tag === "InFlight") {
        // The first copy is being published (its Ack may go to a connection
        // that is gone): this copy is answered when that publish completes.
        let waiting = repeats.get(key)
        if (waiting === undefined) repeats.set(key, waiting = [])
        waiting.push((at) =>
          session.unsafeSend(
            at === undefined
              ? Message.SayRefused.make({ id: message.id, code: "Unavailable", retryAfter })
              : Message.Ack.make({ id: message.id, ...at })
          )
        )
        return
      }
      const answerRepeats = (at: Position | undefined) => {
        const waiting = repeats.get(key)
        if (waiting === undefined) return
        repeats.delete(key)
        for (const answer of waiting) answer(at)
      }
      // Pipelined: the session's next message is handled without waiting for
      // this publish, so a sender's lines go to the History back to back (one
      // Redis round trip per line would cap a sender at ~1 line/ms). Their
      // order holds: publishes start in arrival order, and a layer sends them
      // in that order on one connection (Redis runs them in that order); a
      // publish that fails is refused, and the client resends it.
      publishing.publish(name, (position, at) => ChatLine.saidText(user, message.text, name, position, at), {
        key: ChatLine.repeatKey(user, message.id, message.text),
        // saidText writes epoch, offset and time as JSON values and nothing derived from them.
        checked: true
      }, (result) => {
        if (Either.isLeft(result)) {
          seen.abandon()
          session.unsafeSend(Message.SayRefused.make({ id: message.id, code: "Unavailable", retryAfter, detail: result.left.message.slice(0, 256) }))
          answerRepeats(undefined)
          return
        }
        const at = { room: name, epoch: result.right.epoch, offset: result.right.offset }
        seen.complete(at)
        session.unsafeSend(Message.Ack.make({ id: message.id, ...at }))
        answerRepeats(at)
      })
    }

    const server: Server.Server<Message.Message> = yield* Server.make<Message.Message>({
      framing: Frame.lengthPrefixed(options.maxFrameBytes !== undefined ? { maxFrameBytes: options.maxFrameBytes } : {}),
      codec,
      dialect: TetherProtocol.dialect,
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.loginTimeout !== undefined ? { loginTimeout: options.loginTimeout } : {}),
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.drainTimeout !== undefined ? { drainTimeout: options.drainTimeout } : {}),
      ...(options.driver !== undefined ? { driver: options.driver } : {}),
      outbound: options.outbound ?? { maxBytes: defaultOutboundBytes, capacity: defaultOutboundMessages },
      ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
      ...(options.maxPendingPerAddress !== undefined ? { maxPendingPerAddress: options.maxPendingPerAddress } : {}),
      ...(options.maxLoginBytes !== undefined ? { maxLoginBytes: options.maxLoginBytes } : {}),
      ...(options.rateLimit === false ? {} : {
        rateLimit: {
          ...(options.rateLimit ?? defaultRateLimit),
          cost: (message: Message.Message) => (message._tag === "Who" ? 10 : 1),
          refuse: (message: Message.Message, retryAfterMs: number) =>
            message._tag === "Say"
              ? Message.SayRefused.make({ id: message.id, code: "RateLimited", retryAfter: retryAfterMs })
              : Message.Failure.make({ code: "RateLimited", message: `over the rate limit: retry in ${retryAfterMs} ms` })
        }
      }),
      login: TetherProtocol.serverLogin,
      refuse: (reason) => Message.Failure.make({ code: "TooManyConnections", message: reason }),
      goodbye: (reason) => Message.Bye.make({ reason }),
      // A name is one person cluster-wide: claimed in Presence before the login is answered.
      admit: (session) =>
        presence.claim(session.user!, sessionKey(session)).pipe(
          Effect.catchAll((error) => Effect.as(Effect.logWarning(`login refused: ${error.message}`), false))
        ),
      onJoin: (session, login) => {
        const resume = login._tag === "Login" ? login.resume ?? [] : []
        if (resume.length === 0) return rooms.join(session, lobby)
        const seen = new Set<string>()
        const distinct = resume.filter((p) => !seen.has(p.room) && seen.add(p.room)).slice(0, maxRooms)
        return Effect.forEach(distinct, (from) => rooms.resume(session, from), { discard: true })
      },
      onLeave: (session, reason) =>
        rooms.leaveAll(session, reason, Effect.ignore(presence.release(session.user!, sessionKey(session)))),
      handler: (session, message) => {
        switch (message._tag) {
          case "Say":
            return say(session, message)
          case "Join":
            return rooms.join(session, message.room)
          case "Leave":
            return rooms.leave(session, message.room)
          case "Rooms":
            session.unsafeSend(Message.RoomList.make({ rooms: Array.from(rooms.roomsOf(session)).sort() }))
            return
          case "Who":
            return rooms.who(session, message.room ?? lobby)
          case "Request":
            session.unsafeSend(Message.RequestFailed.make({
              id: message.id,
              code: "Unsupported",
              message: "the chat server answers no requests"
            }))
            return
          default:
            return
        }
      }
    })
    fanout.wire = server.wire
    // On shutdown (this runs before the server's drain), publishes in flight
    // get their answer first, within the drain timeout.
    yield* Effect.addFinalizer(() =>
      publishing.awaitIdle.pipe(Effect.timeoutOption(options.drainTimeout ?? "10 seconds"), Effect.asVoid)
    )
    // Members of a room who vanished with a lost node (cluster mode) are
    // announced as left: `lost` runs on the one node that swept them, which
    // tells its members and the other nodes.
    yield* presence.lost((room, user) => rooms.notify({ _tag: "Left", room, user, reason: "node lost" }))
    // Joined / Left on the other nodes, told to this node's members of the room.
    yield* presence.changes((change) => rooms.tellChange(change))
    return { ...server, roomActivity: (limit) => fanout.busiest(limit) } satisfies ChatServer
  })
