/**
 * Resuming one room for one session while the room keeps talking: the
 * missed entries from `History.recover`, then the live ones, with nothing
 * duplicated and nothing skipped.
 *
 * The server registers a {@link Gate} for the session in its fan-out of the
 * room *before* recovering, so every live entry published after the recovery
 * reads the history reaches the gate. While the recovery is in flight the
 * gate holds live entries (bounded); {@link resume} then, in one synchronous
 * step, hands `emit` the recovered entries followed by the held live entries
 * after them, and opens the gate: from then on `offer` says "send it" for each
 * live entry after the last one emitted, and "no" for one already emitted.
 * Because emit and open happen in one step, no live entry can be sent between
 * the replay and the entries held behind it.
 *
 * If more live entries arrive than the gate holds (or they do not continue
 * the recovery: a skipped delivery, a new epoch), it drops them and
 * `resume` recovers again from where the previous recovery ended (at most
 * `maxRounds` recoveries); after that the room is reported `TooOld`, never a
 * partial replay presented as complete.
 *
 * @example
 * ```ts
 * const gate = Replay.unsafeMakeGate(from)
 * members.add(session, gate)        // fan-out: if (gate.offer(epoch, entry)) send(entry.payload)
 * yield* Replay.resume(history, room, gate, (outcome) => {
 *   send(outcome._tag === "Recovered" ? Recovered(...) : Unrecoverable(...))
 *   for (const entry of outcome.replay) send(entry.payload)
 *   for (const entry of outcome.live) send(entry.payload)
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import type * as History from "./History.js"

/**
 * What `resume` hands to `emit`, to send in this order: the answer
 * (`Recovered` with `replay.length` replayed, or `Unrecoverable`), the
 * `replay` entries, then the `live` entries.
 * - `Recovered`: `replay` is every entry after the session's position up to
 *   `position`, complete and in order; `live` continues from there.
 * - `Unrecoverable`: nothing is replayed; the room stands at `position` and
 *   `live` holds the entries after it that arrived meanwhile.
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome =
  | {
    readonly _tag: "Recovered"
    readonly position: History.Position
    readonly replay: ReadonlyArray<History.Entry>
    readonly live: ReadonlyArray<History.Entry>
  }
  | {
    readonly _tag: "Unrecoverable"
    readonly reason: "EpochChanged" | "TooOld"
    readonly position: History.Position
    readonly replay: ReadonlyArray<History.Entry>
    readonly live: ReadonlyArray<History.Entry>
  }

/**
 * One session's gate on one room's live entries.
 *
 * @since 0.2.0
 * @category models
 */
export interface Gate {
  /** The position the session resumes from. */
  readonly from: History.Position
  /**
   * Called by the fan-out for each live entry of the room: true when the
   * entry is to be sent to the session now; false while the gate holds it
   * (before `resume` emits) or when it was already sent.
   */
  readonly offer: (epoch: string, entry: History.Entry) => boolean
  /** Whether `resume` has emitted and live entries now pass. */
  readonly isOpen: () => boolean
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Live entries held while a recovery is in flight (default 10,000). */
  readonly maxHeld?: number
  /** Recoveries tried when the held entries overflowed (default 3). */
  readonly maxRounds?: number
}

const unopened: unique symbol = Symbol.for("@tether/runtime/Replay/unopened")

interface GateState extends Gate {
  held: Array<{ readonly epoch: string; readonly entry: History.Entry }>
  overflowed: boolean
  /** The highest entry offered while closed (epoch, offset). */
  readonly highest: { epoch: string; offset: number }
  last: { epoch: string; offset: number } | typeof unopened
  readonly maxHeld: number
}

/**
 * A closed gate for a session resuming from `from`, synchronously: register
 * it in the room's fan-out, then call {@link resume} with it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const unsafeMakeGate = (from: History.Position, options: Options = {}): Gate => {
  const state: GateState = {
    from,
    held: [],
    overflowed: false,
    highest: { epoch: from.epoch, offset: 0 },
    last: unopened,
    maxHeld: Math.max(0, options.maxHeld ?? 10_000),
    isOpen: () => state.last !== unopened,
    offer: (epoch, entry) => {
      const last = state.last
      if (last === unopened) {
        if (epoch !== state.highest.epoch || entry.offset > state.highest.offset) {
          state.highest.epoch = epoch
          state.highest.offset = entry.offset
        }
        if (state.held.length >= state.maxHeld) {
          // Dropped: resume recovers them again from the history.
          state.held = []
          state.overflowed = true
        } else {
          state.held.push({ epoch, entry })
        }
        return false
      }
      if (epoch !== last.epoch) {
        // A new history (the room's epoch changed): it starts here.
        last.epoch = epoch
        last.offset = entry.offset
        return true
      }
      if (entry.offset <= last.offset) return false
      last.offset = entry.offset
      return true
    }
  }
  return state
}

/**
 * Recovers `room` from the position of `gate` (made by {@link unsafeMakeGate},
 * resumed once), hands the outcome to `emit` and opens the gate, in one
 * synchronous step after the last recovery. Fails
 * (gate still closed) if the history is unavailable: the caller removes the
 * gate and tells the session.
 *
 * @since 0.2.0
 * @category resuming
 */
export const resume = (
  history: History.History["Type"],
  room: string,
  gate: Gate,
  emit: (outcome: Outcome) => void,
  options: Options = {}
): Effect.Effect<Outcome, History.HistoryUnavailable> => {
  const state = gate as GateState
  if (gate.isOpen()) return Effect.dieMessage("Replay.resume: this gate was already resumed")
  const maxRounds = Math.max(1, options.maxRounds ?? 3)
  const replay: Array<History.Entry> = []
  const finish = (outcome: Outcome): Outcome => {
    const last = outcome.live.at(-1)
    state.last = { epoch: outcome.position.epoch, offset: last !== undefined ? last.offset : outcome.position.offset }
    state.held = []
    state.overflowed = false
    emit(outcome)
    return outcome
  }
  // The held entries after `position` in its epoch, if they continue it
  // without a gap; undefined when they do not (another recovery is needed).
  const liveAfter = (position: History.Position): Array<History.Entry> | undefined => {
    if (state.overflowed) return undefined
    const live: Array<History.Entry> = []
    let offset = position.offset
    for (const { entry, epoch } of state.held) {
      // The room's epoch changed after this recovery read it.
      if (epoch !== position.epoch) return undefined
      if (entry.offset <= offset) continue
      if (entry.offset !== offset + 1) return undefined
      live.push(entry)
      offset = entry.offset
    }
    return live
  }
  // Nothing can be replayed: the session continues after everything it could
  // have been offered so far, so no later live entry leaves a silent gap.
  const unrecoverable = (reason: "EpochChanged" | "TooOld", position: History.Position): Outcome => {
    const live = liveAfter(position)
    if (live !== undefined) return finish({ _tag: "Unrecoverable", reason, position, replay: [], live })
    const offset = Math.max(position.offset, state.highest.epoch === position.epoch ? state.highest.offset : 0)
    return finish({ _tag: "Unrecoverable", reason, position: { epoch: position.epoch, offset }, replay: [], live: [] })
  }
  const round = (from: History.Position, n: number): Effect.Effect<Outcome, History.HistoryUnavailable> =>
    Effect.flatMap(history.recover(room, from), (recovery) =>
      Effect.suspend((): Effect.Effect<Outcome, History.HistoryUnavailable> => {
        if (recovery._tag === "Unrecoverable") {
          // Also after an earlier round recovered: a replay is all or nothing.
          return Effect.succeed(unrecoverable(recovery.reason, recovery.position))
        }
        for (const entry of recovery.entries) replay.push(entry)
        const live = liveAfter(recovery.position)
        if (live !== undefined) {
          return Effect.succeed(finish({ _tag: "Recovered", position: recovery.position, replay, live }))
        }
        if (n >= maxRounds) return Effect.succeed(unrecoverable("TooOld", recovery.position))
        // The held entries overflowed or do not continue the replay: recover
        // again from its end (what is held from now on continues that).
        state.overflowed = false
        return round(recovery.position, n + 1)
      }))
  return round(gate.from, 1)
}
