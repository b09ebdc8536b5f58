/**
 * A chat node's fan-out of rooms: one history subscription per room that has
 * members on this node, delivering each entry in offset order to the local
 * members (through a session's `Replay` gate while it resumes), and notices
 * (Joined / Left) to the members of small rooms.
 *
 * @internal
 */
import type * as Message from "@tether/protocol/Message"
import * as Wire from "@tether/protocol/Wire"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import type * as History from "../History.js"
import type * as Replay from "../Replay.js"
import type { Session } from "../Session.js"

/** One room's fan-out on this node. @internal */
export interface Room {
  readonly name: string
  readonly members: Map<Session<Message.Message>, Replay.Gate | undefined>
  readonly subscribed: Deferred.Deferred<void, History.HistoryUnavailable>
  readonly scope: Scope.CloseableScope
  /**
   * Where the room stands for this node's members: the subscription's start,
   * then each entry delivered. A member added now gets every entry after it.
   */
  epoch: string
  offset: number
  /** Lines delivered (entries of its history seen by this node), and that count at the last `busiest`. */
  lines: number
  sampledLines: number
  /** Lines in the window the last `busiest` closed. */
  window: number
}

/** A room's activity since the previous `busiest` call. @internal */
export interface Activity {
  readonly room: string
  readonly members: number
  readonly lines: number
}

const encoder = new TextEncoder()

/** @internal */
export class RoomFanout {
  private readonly rooms = new Map<string, Room>()
  /** The server's wire (set once the server is made). */
  wire: Wire.Wire<Message.Message> | undefined = undefined

  constructor(
    private readonly history: History.History["Type"],
    private readonly scope: Scope.Scope,
    private readonly announceUpTo: number
  ) {}

  get(name: string): Room | undefined {
    return this.rooms.get(name)
  }

  /** A history entry as a payload for this server's wire, encoded once for all members. */
  shared(payload: string): Wire.Encoded {
    return new Wire.Encoded(this.wire!.textual ? payload : encoder.encode(payload))
  }

  private readonly deliver: History.Deliver = (name, epoch, entry) => {
    const room = this.rooms.get(name)
    if (room === undefined) return
    room.lines++
    room.epoch = epoch
    room.offset = entry.offset
    const payload = this.shared(entry.payload)
    for (const [session, gate] of room.members) {
      if (gate === undefined || gate.offer(epoch, entry)) session.unsafeSend(payload)
    }
  }

  /** The room's fan-out on this node, subscribed to its history (once per room). */
  roomOf(name: string): Effect.Effect<Room, History.HistoryUnavailable> {
    return Effect.suspend(() => {
      const existing = this.rooms.get(name)
      if (existing !== undefined) return Effect.as(Deferred.await(existing.subscribed), existing)
      const room: Room = {
        name,
        members: new Map(),
        subscribed: Deferred.unsafeMake(FiberId.none),
        scope: Effect.runSync(Scope.fork(this.scope, ExecutionStrategy.sequential)),
        epoch: "",
        offset: 0,
        lines: 0,
        sampledLines: 0,
        window: 0
      }
      this.rooms.set(name, room)
      // A function of this subscription's own: a room released and made again
      // subscribes anew while the old subscription closes, and a history that
      // keeps its subscribers in a set must not take the two for one.
      return this.history.subscribe(name, (room, epoch, entry) => this.deliver(room, epoch, entry)).pipe(
        Scope.extend(room.scope),
        Effect.exit,
        Effect.flatMap((exit) => {
          if (Exit.isSuccess(exit)) {
            room.epoch = exit.value.epoch
            room.offset = exit.value.offset
          }
          Deferred.unsafeDone(room.subscribed, Exit.asVoid(exit))
          if (Exit.isFailure(exit)) {
            this.rooms.delete(name)
            return Effect.zipRight(Scope.close(room.scope, Exit.void), Effect.failCause(exit.cause))
          }
          return Effect.succeed(room)
        })
      )
    })
  }

  /**
   * `session` as a member of the room `name` (subscribed first, once per
   * room). The member is added in the same step that checks the room is
   * still this node's: a room released while its subscription was awaited
   * is not joined (its lines would never come); a new one is made.
   */
  join(name: string, session: Session<Message.Message>, gate: Replay.Gate | undefined): Effect.Effect<Room, History.HistoryUnavailable> {
    return Effect.flatMap(this.roomOf(name), (room) =>
      Effect.suspend(() => {
        if (this.rooms.get(name) !== room) return this.join(name, session, gate)
        room.members.set(session, gate)
        return Effect.succeed(room)
      }))
  }

  /** Forgets a room this node no longer has members in (checked when it runs, not when it is made). */
  release(room: Room): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (room.members.size !== 0 || this.rooms.get(room.name) !== room) return Effect.void
      this.rooms.delete(room.name)
      return Scope.close(room.scope, Exit.void)
    })
  }

  /** Sends `message` to this node's members of `name`, but `except` (notices only in small rooms). */
  tell(name: string, message: Message.Message, except?: Session<Message.Message>): void {
    const room = this.rooms.get(name)
    if (room === undefined) return
    if ((message._tag === "Joined" || message._tag === "Left") && room.members.size > this.announceUpTo) return
    const payload = Wire.share(this.wire!, message)
    for (const session of room.members.keys()) if (session !== except) session.unsafeSend(payload)
  }

  /**
   * The `limit` rooms with the most lines since the previous call (ties: more
   * members first), and how many rooms this node has. One pass over the rooms
   * keeping a sorted array of at most `limit`: no allocation per room. One
   * reader (a dashboard's sampler): each call starts the next window.
   */
  busiest(limit: number): { readonly rooms: number; readonly busiest: ReadonlyArray<Activity> } {
    const top: Array<Room> = []
    for (const room of this.rooms.values()) {
      const lines = room.lines - room.sampledLines
      room.sampledLines = room.lines
      room.window = lines
      if (limit < 1) continue
      const members = room.members.size
      let i = top.length
      if (i === limit) {
        const last = top[i - 1]!
        if (lines < last.window || (lines === last.window && members <= last.members.size)) continue
        i--
      }
      // Insertion into the (at most `limit`) sorted rows: busier first, then more members.
      while (i > 0) {
        const above = top[i - 1]!
        if (lines < above.window || (lines === above.window && members <= above.members.size)) break
        top[i] = above
        i--
      }
      top[i] = room
    }
    return { rooms: this.rooms.size, busiest: top.map((room) => ({ room: room.name, members: room.members.size, lines: room.window })) }
  }
}
