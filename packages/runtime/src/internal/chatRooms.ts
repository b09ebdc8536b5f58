/**
 * The chat's rooms on one node: who of this node's sessions is in which
 * room, joining, leaving, resuming a room after a reconnect (the missed
 * lines first, then live ones), who is here, and the Joined / Left notices
 * (to this node's members, then through `Presence` to the other nodes').
 * `ChatServer` routes the protocol's messages here.
 *
 * @internal
 */
import * as Message from "@tether/protocol/Message"
import type * as Wire from "@tether/protocol/Wire"
import * as Effect from "effect/Effect"
import type * as History from "../History.js"
import type * as Presence from "../Presence.js"
import * as Replay from "../Replay.js"
import type { Session } from "../Session.js"
import type * as RoomFanout from "./roomFanout.js"

type ChatSession = Session<Message.Message>

const noticeOf = (change: Presence.Change): Message.Message =>
  change._tag === "Joined"
    ? Message.Joined.make({ user: change.user, room: change.room })
    : Message.Left.make({ user: change.user, reason: change.reason, room: change.room })

const unavailable = (room: string) => Message.RoomRefused.make({ room, code: "Unavailable", detail: "history unavailable" })

/** @internal */
export class ChatRooms {
  /** The rooms of each of this node's sessions (by session id). */
  private readonly joined = new Map<number, Set<string>>()

  constructor(
    private readonly rooms: RoomFanout.RoomFanout,
    private readonly history: History.History["Type"],
    private readonly presence: Presence.Presence["Type"],
    private readonly limits: { readonly maxRooms: number; readonly whoLimit: number }
  ) {}

  roomsOf(session: ChatSession): ReadonlySet<string> {
    return this.joined.get(session.id) ?? new Set<string>()
  }

  /** `message` to this node's members of `room` (but `except`). */
  tell(room: string, message: Message.Message, except?: ChatSession): void {
    this.rooms.tell(room, message, except)
  }

  /** A change on another node, told to this node's members of its room. */
  tellChange(change: Presence.Change): void {
    this.tell(change.room, noticeOf(change))
  }

  /** A member joined or left: told to this node's members (but `except`), then to the other nodes'. */
  notify(change: Presence.Change, except?: ChatSession): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.tell(change.room, noticeOf(change), except)
      return Effect.ignore(this.presence.announce(change))
    })
  }

  private enter(session: ChatSession, name: string, gate: Replay.Gate | undefined) {
    return Effect.flatMap(this.rooms.join(name, session, gate), (room) => {
      let set = this.joined.get(session.id)
      if (set === undefined) this.joined.set(session.id, set = new Set())
      set.add(name)
      return Effect.as(Effect.ignore(this.presence.join(name, session.user!)), room)
    })
  }

  /** Leaves `name`; with a `reason`, the others are told (`Left`). */
  private exit(session: ChatSession, name: string, reason: string | undefined): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.joined.get(session.id)?.delete(name)
      const room = this.rooms.get(name)
      if (room === undefined) return Effect.void
      room.members.delete(session)
      return Effect.zipRight(
        reason === undefined ? Effect.void : this.notify({ _tag: "Left", room: name, user: session.user!, reason }),
        Effect.zipRight(Effect.ignore(this.presence.leave(name, session.user!)), this.rooms.release(room))
      )
    })
  }

  join(session: ChatSession, name: string): Effect.Effect<void> {
    const mine = this.roomsOf(session)
    const maxRooms = this.limits.maxRooms
    if (!mine.has(name) && mine.size >= maxRooms) {
      session.unsafeSend(Message.RoomRefused.make({ room: name, code: "TooManyRooms", detail: `at most ${maxRooms} rooms` }))
      return Effect.void
    }
    const already = mine.has(name)
    const refuse = () => {
      if (!already) void Effect.runFork(this.exit(session, name, undefined))
      session.unsafeSend(unavailable(name))
    }
    const joined = (position: History.Position) => {
      session.unsafeSend(Message.RoomJoined.make({ room: name, epoch: position.epoch, offset: position.offset }))
      return already ? Effect.void : this.notify({ _tag: "Joined", room: name, user: session.user! }, session)
    }
    return (already ? Effect.void : Effect.asVoid(this.enter(session, name, undefined))).pipe(
      Effect.matchEffect({
        onFailure: () => Effect.sync(refuse),
        onSuccess: () => {
          // RoomJoined carries where the room stands for its members on this
          // node (what they were delivered), read and sent in one step: every
          // line the session got before is at or below it, every later one
          // after. A read of the history could be ahead of lines still on
          // their way to this node (Redis pub/sub), which the client would
          // then take for repeats and hide.
          const room = this.rooms.get(name)
          if (room !== undefined && room.members.has(session)) return joined(room)
          return Effect.matchEffect(this.history.position(name), { onFailure: () => Effect.sync(refuse), onSuccess: joined })
        }
      })
    )
  }

  /** The `Leave` message: out of the room, the others told, the session answered. */
  leave(session: ChatSession, name: string): Effect.Effect<void> | void {
    if (!this.roomsOf(session).has(name)) {
      session.unsafeSend(Message.RoomRefused.make({ room: name, code: "NotMember" }))
      return
    }
    return Effect.zipRight(
      this.exit(session, name, "left"),
      Effect.sync(() => session.unsafeSend(Message.RoomLeft.make({ room: name })))
    )
  }

  /** The session ended: out of every room (the others told why), its name released. */
  leaveAll(session: ChatSession, reason: string, releaseName: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const mine = Array.from(this.roomsOf(session))
      this.joined.delete(session.id)
      return Effect.zipRight(
        Effect.forEach(mine, (name) => this.exit(session, name, reason.slice(0, 256)), { discard: true }),
        releaseName
      )
    })
  }

  /**
   * Rejoins `given.room` after a reconnect: the missed lines, then live ones.
   * When the room's history is a new one (an in-memory server restarted),
   * the old lines are announced lost (`Unrecoverable`, `EpochChanged`) and
   * the new history is replayed from its start, so lines said since the
   * restart are not lost too.
   */
  resume(session: ChatSession, given: Message.ResumePosition): Effect.Effect<void> {
    const name = given.room
    const history = this.history
    return history.position(name).pipe(
      Effect.flatMap((current) => {
        const epochChanged = current.epoch !== given.epoch
        const from = epochChanged ? { epoch: current.epoch, offset: 0 } : { epoch: given.epoch, offset: given.offset }
        const gate = Replay.unsafeMakeGate(from)
        return Effect.flatMap(this.enter(session, name, gate), (room) =>
          Replay.resume(history, name, gate, (outcome) => {
            const position = outcome.position
            const burst: Array<Message.Message | Wire.Encoded> = [
              outcome._tag === "Unrecoverable"
                ? Message.Unrecoverable.make({ room: name, reason: outcome.reason, epoch: position.epoch, offset: position.offset })
                : epochChanged
                // The old history is gone; the new one follows from its first line.
                ? Message.Unrecoverable.make({ room: name, reason: "EpochChanged", epoch: from.epoch, offset: 0 })
                : Message.Recovered.make({ room: name, epoch: position.epoch, offset: position.offset, replayed: outcome.replay.length })
            ]
            for (const entry of outcome.replay) burst.push(this.rooms.shared(entry.payload))
            for (const entry of outcome.live) burst.push(this.rooms.shared(entry.payload))
            // At once, beyond the connection's usual bounds (bounded by the
            // history's): a replay as large as the history would otherwise
            // close the session as a slow consumer, and its reconnect would
            // meet a longer replay, again and again.
            session.unsafeSendBurst(burst)
          }).pipe(
            Effect.tap(() => this.notify({ _tag: "Joined", room: name, user: session.user! }, session)),
            Effect.asVoid,
            Effect.tapError(() => Effect.sync(() => room.members.delete(session)))
          ))
      }),
      Effect.catchAll(() =>
        Effect.zipRight(this.exit(session, name, undefined), Effect.sync(() => session.unsafeSend(unavailable(name))))
      )
    )
  }

  who(session: ChatSession, name: string): Effect.Effect<void> {
    return Effect.match(this.presence.members(name, { limit: this.limits.whoLimit }), {
      onFailure: () => session.unsafeSend(Message.Present.make({ users: [], room: name })),
      onSuccess: (users) => session.unsafeSend(Message.Present.make({ users: [...users], room: name }))
    })
  }
}
