/**
 * A client's resume state: the last (epoch, offset) it has seen in each room,
 * what it presents in `Login.resume` after a reconnect, and the rule that
 * shows each line once.
 *
 * The rule: a `Said` of a room at (epoch, offset) is shown only if the client
 * has no position in that room, or the epoch differs from the one it holds
 * (a new history), or the offset is after the last it saw. A line at or
 * before the last offset is a duplicate (e.g. a resent line, or a replay that
 * overlaps what arrived live) and is dropped. A line more than one after the
 * last is shown and reported as a gap, which a correct server never causes.
 *
 * Feed it every message of the server with `receive`: it knows which ones
 * move a room's position. (`Recovered` does not: its `offset` is where the
 * room stands after the replayed lines that follow it, and setting it first
 * would make them look like duplicates.)
 *
 * @example
 * ```ts
 * const state = ResumeState.unsafeMake()
 * state.receive(Message.RoomJoined.make({ room: "#lobby", epoch: "e", offset: 12 }))
 * state.receive(said13)?._tag                                 // "Next": show it
 * state.receive(said13)?._tag                                 // "Duplicate": drop it
 * Message.Login.make({ user, password, resume: state.positions() })
 * ```
 *
 * @since 0.2.0
 */
import * as Fields from "@tether/protocol/Fields"
import type * as Message from "@tether/protocol/Message"
import * as Effect from "effect/Effect"
import type * as History from "./History.js"

/**
 * What to do with one numbered line:
 * - `Next`: the line after the last seen: show it;
 * - `Reset`: the first line seen in this room, or of a new epoch: show it;
 * - `Gap`: after the last seen, with `missed` lines never seen between: show it;
 * - `Duplicate`: at or before the last seen: do not show it.
 *
 * @since 0.2.0
 * @category models
 */
export type Observation =
  | { readonly _tag: "Next" }
  | { readonly _tag: "Reset" }
  | { readonly _tag: "Gap"; readonly missed: number }
  | { readonly _tag: "Duplicate" }

const next: Observation = { _tag: "Next" }
const reset: Observation = { _tag: "Reset" }
const duplicate: Observation = { _tag: "Duplicate" }

/**
 * Whether an observed line is shown.
 *
 * @since 0.2.0
 * @category utils
 */
export const isShown = (observation: Observation): boolean => observation._tag !== "Duplicate"

/**
 * @since 0.2.0
 * @category models
 */
export interface ResumeState {
  /** Applies the rule to a line of `room` at (`epoch`, `offset`) and records it if shown. */
  readonly observe: (room: string, epoch: string, offset: number) => Observation
  /**
   * The rule for a `Said`: lines without a position (a server without
   * history) are shown as `Next`; a `Said` without room is in `#lobby`.
   */
  readonly observeSaid: (said: Message.Said) => Observation
  /**
   * Applies a message of the server: `Said` is observed (the answer says
   * whether to show it); `RoomJoined` and `Unrecoverable` set where the room
   * stands; `RoomLeft` forgets it; `Recovered` changes nothing (the replayed
   * `Said`s that follow it advance the position one by one). Other messages:
   * undefined.
   */
  readonly receive: (message: Message.Message) => Observation | undefined
  /** Sets where `room` stands (what `RoomJoined` and `Unrecoverable` say). */
  readonly set: (room: string, position: History.Position) => void
  /** Forgets `room` (after `RoomLeft`). */
  readonly forget: (room: string) => void
  /** Where `room` stands, if known. */
  readonly get: (room: string) => History.Position | undefined
  /**
   * The rooms with their positions, in the order first set, for
   * `Login.resume` (at most `maxResumePositions`). Empty means "start in
   * `#lobby`": a client that never learned a position joins afresh.
   */
  readonly positions: () => ReadonlyArray<Fields.ResumePosition>
}

/**
 * A new, empty resume state, synchronously.
 *
 * @since 0.2.0
 * @category constructors
 */
export const unsafeMake = (): ResumeState => {
  const rooms = new Map<string, { epoch: string; offset: number }>()
  const observe = (room: string, epoch: string, offset: number): Observation => {
    const held = rooms.get(room)
    if (held === undefined || held.epoch !== epoch) {
      rooms.set(room, { epoch, offset })
      return reset
    }
    if (offset <= held.offset) return duplicate
    const missed = offset - held.offset - 1
    held.offset = offset
    return missed === 0 ? next : { _tag: "Gap", missed }
  }
  const observeSaid = (said: Message.Said): Observation =>
    said.epoch === undefined || said.offset === undefined
      ? next
      : observe(said.room ?? Fields.defaultRoom, said.epoch, said.offset)
  const set = (room: string, position: History.Position): void => {
    const held = rooms.get(room)
    if (held === undefined) rooms.set(room, { epoch: position.epoch, offset: position.offset })
    else {
      held.epoch = position.epoch
      held.offset = position.offset
    }
  }
  return {
    observe,
    observeSaid,
    receive: (message) => {
      switch (message._tag) {
        case "Said":
          return observeSaid(message)
        case "RoomJoined":
        case "Unrecoverable":
          set(message.room, message)
          return undefined
        case "RoomLeft":
          rooms.delete(message.room)
          return undefined
        default:
          return undefined
      }
    },
    set,
    forget: (room) => {
      rooms.delete(room)
    },
    get: (room) => {
      const held = rooms.get(room)
      return held === undefined ? undefined : { epoch: held.epoch, offset: held.offset }
    },
    positions: () => {
      const out: Array<Fields.ResumePosition> = []
      for (const [room, held] of rooms) {
        if (out.length >= Fields.maxResumePositions) break
        out.push({ room, epoch: held.epoch, offset: held.offset })
      }
      return out
    }
  }
}

/**
 * {@link unsafeMake} as an Effect.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: Effect.Effect<ResumeState> = Effect.sync(unsafeMake)
