import { assert, describe, it } from "@effect/vitest"
import * as History from "@tether/runtime/History"
import * as Replay from "@tether/runtime/Replay"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"

const room = "#lobby"

/**
 * A memory history whose first `recover` is slow: it waits before reading
 * (`beforeRead`) and after (`afterRead`), so the test can publish while the
 * recovery is in flight on both sides of its read. Later recovers run
 * `duringEach` (e.g. publishes) first.
 */
const slowHistory = (duringEach: (history: History.History["Type"]) => Effect.Effect<void> = () => Effect.void) =>
  Effect.gen(function*() {
    const history = yield* History.makeMemory()
    const reached = { start: yield* Deferred.make<void>(), read: yield* Deferred.make<void>() }
    const release = { read: yield* Deferred.make<void>(), finish: yield* Deferred.make<void>() }
    let calls = 0
    const slow: History.History["Type"] = {
      ...history,
      recover: (r, from) =>
        Effect.gen(function*() {
          if (calls++ > 0) {
            yield* duringEach(history)
            return yield* history.recover(r, from)
          }
          yield* Deferred.succeed(reached.start, undefined)
          yield* Deferred.await(release.read)
          const recovery = yield* history.recover(r, from)
          yield* Deferred.succeed(reached.read, undefined)
          yield* Deferred.await(release.finish)
          return recovery
        })
    }
    return { history, slow, reached, release, recoverCalls: () => calls }
  })

const publish = (history: History.History["Type"], n: number) =>
  Effect.orDie(Effect.forEach(Array.from({ length: n }), () => history.publish(room, (p) => `m${p.offset}`), { discard: true }))

/** What one session is sent, in order: replayed and live offsets through its gate. */
const session = (history: History.History["Type"], from: History.Position, options?: Replay.Options) =>
  Effect.gen(function*() {
    const gate = Replay.unsafeMakeGate(from, options)
    const sent: Array<number> = []
    const outcomes: Array<Replay.Outcome> = []
    yield* history.subscribe(room, (_room, epoch, entry) => {
      if (gate.offer(epoch, entry)) sent.push(entry.offset)
    })
    const emit = (outcome: Replay.Outcome) => {
      outcomes.push(outcome)
      for (const entry of outcome.replay) sent.push(entry.offset)
      for (const entry of outcome.live) sent.push(entry.offset)
    }
    return { gate, sent, outcomes, emit }
  })

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

describe("Replay", () => {
  it.scoped("live lines published while the replay is in flight follow it: no duplicate, no gap", () =>
    Effect.gen(function*() {
      const { history, reached, release, slow } = yield* slowHistory()
      yield* publish(history, 5)
      const { epoch } = yield* history.position(room)
      const s = yield* session(history, { epoch, offset: 3 })
      const fiber = yield* Effect.fork(Replay.resume(slow, room, s.gate, s.emit))
      yield* Deferred.await(reached.start)
      yield* publish(history, 2) // 6, 7: held, and also in the recovery
      yield* Deferred.succeed(release.read, undefined)
      yield* Deferred.await(reached.read)
      yield* publish(history, 2) // 8, 9: held, after the recovery's read
      assert.deepStrictEqual(s.sent, [], "nothing is sent before the replay")
      assert.isFalse(s.gate.isOpen())
      yield* Deferred.succeed(release.finish, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Recovered")
      assert.deepStrictEqual(outcome.replay.map((e) => e.offset), [4, 5, 6, 7])
      assert.deepStrictEqual(outcome.live.map((e) => e.offset), [8, 9])
      assert.deepStrictEqual(outcome.position, { epoch, offset: 7 })
      assert.isTrue(s.gate.isOpen())
      yield* publish(history, 1)
      assert.deepStrictEqual(s.sent, range(4, 10))
      assert.strictEqual(s.outcomes.length, 1)
      // an entry offered again (e.g. redelivered) is not sent twice
      assert.isFalse(s.gate.offer(epoch, { offset: 10, at: 0, payload: "m10" }))
      assert.isFalse(s.gate.offer(epoch, { offset: 9, at: 0, payload: "m9" }))
      assert.isTrue(s.gate.offer(`${epoch}x`, { offset: 1, at: 0, payload: "new epoch" }), "a new epoch passes")
    }))

  it.scoped("a stale epoch is Unrecoverable: nothing replayed, live lines after the room's position follow", () =>
    Effect.gen(function*() {
      const { history, reached, release, slow } = yield* slowHistory()
      yield* publish(history, 3)
      const s = yield* session(history, { epoch: "from-before-a-restart", offset: 40 })
      const fiber = yield* Effect.fork(Replay.resume(slow, room, s.gate, s.emit))
      yield* Deferred.await(reached.start)
      yield* publish(history, 1) // 4: before the read
      yield* Deferred.succeed(release.read, undefined)
      yield* Deferred.await(reached.read)
      yield* publish(history, 2) // 5, 6
      yield* Deferred.succeed(release.finish, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag === "Unrecoverable" && outcome.reason, "EpochChanged")
      assert.strictEqual(outcome.position.offset, 4)
      assert.deepStrictEqual(outcome.replay, [])
      yield* publish(history, 1)
      assert.deepStrictEqual(s.sent, [5, 6, 7])
    }))

  it.scoped("a position older than the history is TooOld, never a partial replay", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory({ maxEntries: 3 })
      yield* publish(history, 10)
      const { epoch } = yield* history.position(room)
      const s = yield* session(history, { epoch, offset: 6 })
      const outcome = yield* Replay.resume(history, room, s.gate, s.emit)
      assert.strictEqual(outcome._tag === "Unrecoverable" && outcome.reason, "TooOld")
      assert.deepStrictEqual(outcome.replay, [])
      assert.deepStrictEqual(outcome.position, { epoch, offset: 10 })
      const exact = yield* session(history, { epoch, offset: 7 })
      const recovered = yield* Replay.resume(history, room, exact.gate, exact.emit)
      assert.deepStrictEqual(recovered.replay.map((e) => e.offset), [8, 9, 10])
    }))

  it.scoped("held lines beyond maxHeld are recovered again from the history", () =>
    Effect.gen(function*() {
      const { history, reached, release, slow, recoverCalls } = yield* slowHistory()
      yield* publish(history, 2)
      const { epoch } = yield* history.position(room)
      const s = yield* session(history, { epoch, offset: 0 }, { maxHeld: 2 })
      const fiber = yield* Effect.fork(Replay.resume(slow, room, s.gate, s.emit))
      yield* Deferred.succeed(release.read, undefined)
      yield* Deferred.await(reached.read)
      yield* publish(history, 5) // 3..7: overflows the gate
      yield* Deferred.succeed(release.finish, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(recoverCalls(), 2)
      assert.strictEqual(outcome._tag, "Recovered")
      assert.deepStrictEqual(outcome.replay.map((e) => e.offset), range(1, 7))
      yield* publish(history, 1)
      assert.deepStrictEqual(s.sent, range(1, 8))
      void reached
    }))

  it.scoped("a room too busy to catch up is TooOld after maxRounds, and live lines continue without a gap", () =>
    Effect.gen(function*() {
      // Every later recovery sees 3 new lines arrive first: more than the gate holds.
      const { history, release, slow, recoverCalls } = yield* slowHistory((h) => publish(h, 3))
      const { epoch } = yield* history.position(room)
      const s = yield* session(history, { epoch, offset: 0 }, { maxHeld: 1, maxRounds: 3 })
      yield* Deferred.succeed(release.read, undefined)
      yield* Deferred.succeed(release.finish, undefined)
      yield* publish(history, 3) // before the first recover: overflows too
      const outcome = yield* Replay.resume(slow, room, s.gate, s.emit)
      assert.strictEqual(recoverCalls(), 3)
      assert.strictEqual(outcome._tag === "Unrecoverable" && outcome.reason, "TooOld")
      assert.deepStrictEqual(outcome.replay, [])
      yield* publish(history, 2)
      const last = (yield* history.position(room)).offset
      assert.deepStrictEqual(s.sent, range(outcome.position.offset + 1, last))
      assert.isAtLeast(s.sent.length, 2)
    }))

  it.effect("held lines that do not continue the replay (a delivery that skipped) make it recover again", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      yield* publish(history, 10)
      const { epoch } = yield* history.position(room)
      const gate = Replay.unsafeMakeGate({ epoch, offset: 0 })
      let calls = 0
      const truncated: History.History["Type"] = {
        ...history,
        // The first read sees offsets up to 7 only; 9 and 10 are held, 8 never arrived live.
        recover: (r, from) =>
          calls++ === 0
            ? Effect.map(history.recover(r, from), (recovery) =>
              recovery._tag === "Recovered"
                ? { ...recovery, entries: recovery.entries.slice(0, 7), position: { epoch, offset: 7 } }
                : recovery)
            : history.recover(r, from)
      }
      gate.offer(epoch, { offset: 9, at: 0, payload: "m9" })
      gate.offer(epoch, { offset: 10, at: 0, payload: "m10" })
      const outcome = yield* Replay.resume(truncated, room, gate, () => {})
      assert.strictEqual(calls, 2)
      assert.deepStrictEqual(outcome.replay.map((e) => e.offset), range(1, 10))
      assert.deepStrictEqual(outcome.live, [])
    }))

  it.effect("a room whose epoch changes during the resume is announced Unrecoverable in the new epoch", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const entry = (offset: number): History.Entry => ({ offset, at: 0, payload: `m${offset}` })
      let calls = 0
      const flushed: History.History["Type"] = {
        ...history,
        recover: (_room, from) =>
          Effect.succeed<History.Recovery>(
            calls++ === 0
              ? { _tag: "Recovered", entries: [entry(from.offset + 1)], position: { epoch: "E", offset: from.offset + 1 } }
              : { _tag: "Unrecoverable", reason: "EpochChanged", position: { epoch: "F", offset: 2 } }
          )
      }
      const gate = Replay.unsafeMakeGate({ epoch: "E", offset: 4 })
      gate.offer("F", entry(1))
      gate.offer("F", entry(2))
      gate.offer("F", entry(3))
      const outcome = yield* Replay.resume(flushed, room, gate, () => {})
      assert.strictEqual(calls, 2)
      assert.strictEqual(outcome._tag === "Unrecoverable" && outcome.reason, "EpochChanged")
      assert.deepStrictEqual(outcome.position, { epoch: "F", offset: 2 })
      assert.deepStrictEqual(outcome.replay, [], "the replay of epoch E is not presented as complete")
      assert.deepStrictEqual(outcome.live.map((e) => e.offset), [3])
      assert.isFalse(gate.offer("F", entry(3)))
      assert.isTrue(gate.offer("F", entry(4)))
      const again = yield* Effect.exit(Replay.resume(flushed, room, gate, () => {}))
      assert.strictEqual(again._tag, "Failure", "a gate is resumed once")
    }))

  it.effect("a failing history fails resume and leaves the gate closed", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const failing: History.History["Type"] = {
        ...history,
        recover: () => Effect.fail(new History.HistoryUnavailable({ reason: "down" }))
      }
      const gate = Replay.unsafeMakeGate({ epoch: "e", offset: 0 })
      const emitted: Array<Replay.Outcome> = []
      const error = yield* Effect.flip(Replay.resume(failing, room, gate, (o) => emitted.push(o)))
      assert.strictEqual(error._tag, "HistoryUnavailable")
      assert.isFalse(gate.isOpen())
      assert.deepStrictEqual(emitted, [])
    }))

  // Any interleaving of lines before the resume, around the recovery's read,
  // during later recoveries and after: the session is sent every line after
  // its position exactly once, in order (Recovered), or every line after the
  // announced position (Unrecoverable), never a duplicate or a gap.
  it.effect.prop("replay racing live: exactly the lines after the position, once, in order", [
    FastCheck.nat(8), // published before
    FastCheck.nat(8), // back: from = before - back
    FastCheck.nat(4), // before the read
    FastCheck.nat(4), // after the read
    FastCheck.nat(3), // during each later recovery
    FastCheck.nat(6), // after
    FastCheck.integer({ min: 0, max: 5 }), // maxHeld
    FastCheck.boolean() // stale epoch
  ], ([before, back, duringRead, afterRead, duringEach, after, maxHeld, stale]) =>
    Effect.scoped(Effect.gen(function*() {
      const { history, reached, release, slow } = yield* slowHistory((h) => publish(h, duringEach))
      yield* publish(history, before)
      const { epoch } = yield* history.position(room)
      const from = { epoch: stale ? "stale" : epoch, offset: Math.max(0, before - back) }
      const s = yield* session(history, from, { maxHeld, maxRounds: 3 })
      const fiber = yield* Effect.fork(Replay.resume(slow, room, s.gate, s.emit))
      yield* Deferred.await(reached.start)
      yield* publish(history, duringRead)
      yield* Deferred.succeed(release.read, undefined)
      yield* Deferred.await(reached.read)
      yield* publish(history, afterRead)
      yield* Deferred.succeed(release.finish, undefined)
      const outcome = yield* Fiber.join(fiber)
      yield* publish(history, after)
      const total = (yield* history.position(room)).offset
      assert.strictEqual(s.outcomes.length, 1)
      if (outcome._tag === "Recovered") {
        assert.isFalse(stale)
        assert.deepStrictEqual(s.sent, range(from.offset + 1, total))
        assert.deepStrictEqual(outcome.replay.map((e) => e.offset), range(from.offset + 1, outcome.position.offset))
      } else {
        // TooOld only when more lines arrived during the recoveries than the gate holds
        assert.isTrue(stale || duringRead + afterRead + 2 * duringEach > maxHeld, `${outcome.reason} without cause`)
        assert.deepStrictEqual(outcome.replay, [])
        assert.deepStrictEqual(s.sent, range(outcome.position.offset + 1, total))
      }
    })), { fastCheck: { numRuns: 150 } })
})
