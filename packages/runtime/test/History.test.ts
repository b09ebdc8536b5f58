import { assert, describe, it } from "@effect/vitest"
import * as History from "@tether/runtime/History"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"

const render = (text: string) => (position: History.Position, at: number) => `${position.offset}@${at}:${text}`

describe("History.layerMemory", () => {
  it.effect("offsets are 1, 2, 3 per room; render is called once with the assigned position", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const calls: Array<string> = []
      const say = (room: string, text: string) =>
        history.publish(room, (position, at) => (calls.push(`${room}:${position.offset}`), render(text)(position, at)))
      const a1 = yield* say("#a", "x")
      const a2 = yield* say("#a", "y")
      const b1 = yield* say("#b", "z")
      assert.deepStrictEqual([a1.offset, a2.offset, b1.offset], [1, 2, 1])
      assert.strictEqual(a1.epoch, a2.epoch)
      assert.notStrictEqual(a1.epoch, b1.epoch)
      assert.deepStrictEqual(calls, ["#a:1", "#a:2", "#b:1"])
      assert.deepStrictEqual(yield* history.position("#a"), a2)
      const fresh = yield* history.position("#c")
      assert.strictEqual(fresh.offset, 0)
      assert.match(fresh.epoch, /^[A-Za-z0-9_-]{1,64}$/)
    }))

  it.effect("a render that throws leaves the room as it was", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      yield* history.publish("#a", render("x"))
      const exit = yield* Effect.exit(history.publish("#a", () => {
        throw new Error("boom")
      }))
      assert.isTrue(exit._tag === "Failure")
      const next = yield* history.publish("#a", render("y"))
      assert.strictEqual(next.offset, 2)
      const recovered = yield* history.recover("#a", { epoch: next.epoch, offset: 0 })
      assert.deepStrictEqual(recovered._tag === "Recovered" && recovered.entries.map((e) => e.payload), ["1@0:x", "2@0:y"])
    }))

  it.effect("a restarted in-memory history has new epochs: resuming from before is EpochChanged", () =>
    Effect.gen(function*() {
      const before = yield* History.makeMemory()
      const position = yield* before.publish("#lobby", render("x"))
      const after = yield* History.makeMemory()
      yield* after.publish("#lobby", render("y"))
      const recovery = yield* after.recover("#lobby", position)
      assert.strictEqual(recovery._tag, "Unrecoverable")
      assert.strictEqual(recovery._tag === "Unrecoverable" && recovery.reason, "EpochChanged")
      assert.deepStrictEqual(recovery.position, yield* after.position("#lobby"))
    }))

  it.effect("a position beyond the last offset is not of this history: EpochChanged", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const { epoch } = yield* history.publish("#a", render("x"))
      const recovery = yield* history.recover("#a", { epoch, offset: 2 })
      assert.strictEqual(recovery._tag === "Unrecoverable" && recovery.reason, "EpochChanged")
      const exact = yield* history.recover("#a", { epoch, offset: 1 })
      assert.deepStrictEqual(exact, { _tag: "Recovered", entries: [], position: { epoch, offset: 1 } })
    }))

  it.effect("entries older than maxAge leave (TestClock): recovering past them is TooOld", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory({ maxAgeMs: 60_000 })
      const { epoch } = yield* history.publish("#a", render("old"))
      yield* TestClock.adjust("30 seconds")
      yield* history.publish("#a", render("newer"))
      yield* TestClock.adjust("30 seconds")
      // 60 s old exactly: still kept
      const kept = yield* history.recover("#a", { epoch, offset: 0 })
      assert.strictEqual(kept._tag === "Recovered" && kept.entries.length, 2)
      yield* TestClock.adjust("1 millis")
      const lost = yield* history.recover("#a", { epoch, offset: 0 })
      assert.strictEqual(lost._tag === "Unrecoverable" && lost.reason, "TooOld")
      const rest = yield* history.recover("#a", { epoch, offset: 1 })
      assert.deepStrictEqual(rest._tag === "Recovered" && rest.entries.map((e) => e.payload), ["2@30000:newer"])
      yield* TestClock.adjust("30 seconds")
      const none = yield* history.recover("#a", { epoch, offset: 1 })
      assert.strictEqual(none._tag === "Unrecoverable" && none.reason, "TooOld")
      const upToDate = yield* history.recover("#a", { epoch, offset: 2 })
      assert.deepStrictEqual(upToDate, { _tag: "Recovered", entries: [], position: { epoch, offset: 2 } })
    }))

  it.effect("count and byte bounds trim the oldest entries first", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory({ maxEntries: 3, maxBytes: 10 })
      const say = (text: string) => history.publish("#a", () => text)
      const { epoch } = yield* say("aaaa")
      yield* say("b")
      yield* say("c")
      yield* say("d")
      // 4 entries > 3: offset 1 is gone, 2..4 remain
      assert.strictEqual(((yield* history.recover("#a", { epoch, offset: 0 })) as any).reason, "TooOld")
      const kept = yield* history.recover("#a", { epoch, offset: 1 })
      assert.deepStrictEqual(kept._tag === "Recovered" && kept.entries.map((e) => e.payload), ["b", "c", "d"])
      // b, c, d + 10 bytes: 4 entries > 3 drops b; 1 + 1 + 10 > 10 bytes drops c and d
      yield* say("eeeeeeeeee")
      assert.strictEqual(((yield* history.recover("#a", { epoch, offset: 3 })) as any).reason, "TooOld")
      const last = yield* history.recover("#a", { epoch, offset: 4 })
      assert.deepStrictEqual(last._tag === "Recovered" && last.entries.map((e) => e.payload), ["eeeeeeeeee"])
    }))

  it.effect("long-running rooms stay exact after the trimmed head is compacted away", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory({ maxEntries: 10 })
      let epoch = ""
      for (let i = 1; i <= 5_000; i++) epoch = (yield* history.publish("#a", () => `m${i}`)).epoch
      const recovered = yield* history.recover("#a", { epoch, offset: 4_990 })
      assert.deepStrictEqual(
        recovered._tag === "Recovered" && recovered.entries.map((e) => `${e.offset}:${e.payload}`),
        Array.from({ length: 10 }, (_, i) => `${4_991 + i}:m${4_991 + i}`)
      )
      assert.strictEqual(((yield* history.recover("#a", { epoch, offset: 4_989 })) as any).reason, "TooOld")
    }))

  it.scoped("at most maxRooms rooms: idle rooms (no entries, no subscriber) are forgotten first, and announced as EpochChanged", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory({ maxRooms: 3, maxAgeMs: 1_000 })
      const busy = yield* history.publish("#busy", () => "kept") // holds an entry
      yield* history.subscribe("#watched", () => {})
      const watched = yield* history.position("#watched") // a subscriber
      const idle = yield* history.position("#idle") // nothing
      yield* history.position("#new") // forgets #idle only
      assert.deepStrictEqual(yield* history.position("#busy"), busy)
      assert.deepStrictEqual(yield* history.position("#watched"), watched)
      const forgotten = yield* history.recover("#idle", idle)
      assert.strictEqual(forgotten._tag === "Unrecoverable" && forgotten.reason, "EpochChanged")
      // Once its entries have aged out, #busy is idle too.
      yield* TestClock.adjust("2 seconds")
      yield* history.position("#newer")
      const after = yield* history.recover("#busy", busy)
      assert.strictEqual(after._tag === "Unrecoverable" && after.reason, "EpochChanged")
      assert.deepStrictEqual((yield* history.recover("#watched", watched))._tag, "Recovered")
    }))

  it.scoped("subscribers get every entry synchronously inside publish, in order, until their scope closes", () =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory()
      const seen: Array<string> = []
      const scope = yield* Scope.make()
      yield* Scope.extend(history.subscribe("#a", (room, _epoch, entry) => seen.push(`1:${room}:${entry.offset}`)), scope)
      yield* history.subscribe("#a", (_room, _epoch, entry) => seen.push(`2:${entry.offset}`))
      yield* history.subscribe("#b", (_room, _epoch, entry) => seen.push(`b:${entry.offset}`))
      yield* history.subscribe("#a", () => {
        throw new Error("a broken subscriber")
      })
      yield* history.publish("#a", render("x"))
      assert.deepStrictEqual(seen, ["1:#a:1", "2:1"])
      yield* Scope.close(scope, Effect.void as any)
      const position = yield* history.publish("#a", render("y"))
      assert.strictEqual(position.offset, 2)
      yield* history.publish("#b", render("z"))
      assert.deepStrictEqual(seen, ["1:#a:1", "2:1", "2:2", "b:1"])
    }))

  // The property: under any sequence of publishes (of any sizes, in two
  // rooms), clock steps and recovers from any position, recover answers the
  // complete suffix after the position exactly when that suffix satisfies
  // the limits now (count, bytes, age), TooOld otherwise, and never a
  // partial list.
  const limits = { maxEntries: 5, maxAgeMs: 1_000, maxBytes: 60 }
  type Step =
    | { readonly _tag: "publish"; readonly room: 0 | 1; readonly size: number }
    | { readonly _tag: "sleep"; readonly ms: number }
    | { readonly _tag: "recover"; readonly room: 0 | 1; readonly back: number; readonly otherEpoch: boolean }
  const room = FastCheck.constantFrom(0 as const, 1 as const)
  const step: FastCheck.Arbitrary<Step> = FastCheck.oneof(
    { weight: 4, arbitrary: FastCheck.record({ _tag: FastCheck.constant("publish" as const), room, size: FastCheck.oneof(FastCheck.nat(4), FastCheck.nat(30)) }) },
    { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("sleep" as const), ms: FastCheck.nat(700) }) },
    {
      weight: 3,
      arbitrary: FastCheck.record({
        _tag: FastCheck.constant("recover" as const),
        room,
        back: FastCheck.integer({ min: 0, max: 9 }),
        otherEpoch: FastCheck.boolean()
      })
    }
  )
  it.effect.prop("recover is the exact missing suffix or Unrecoverable, under any publishes and trims", [
    FastCheck.array(step, { minLength: 20, maxLength: 80, size: "max" })
  ], ([steps]) =>
    Effect.gen(function*() {
      const history = yield* History.makeMemory(limits)
      const rooms = ["#a", "#b"]
      const published: Array<Array<History.Entry>> = [[], []]
      for (const s of steps) {
        if (s._tag === "sleep") {
          yield* TestClock.adjust(s.ms)
        } else if (s._tag === "publish") {
          const text = "x".repeat(s.size)
          let rendered = ""
          const position = yield* history.publish(rooms[s.room]!, (p, at) => (rendered = `${p.offset}:${text}`, void at, rendered))
          const now = yield* Clock.currentTimeMillis
          published[s.room]!.push({ offset: position.offset, at: now, payload: rendered })
          assert.strictEqual(position.offset, published[s.room]!.length)
        } else {
          const all = published[s.room]!
          const current = yield* history.position(rooms[s.room]!)
          const from = Math.max(0, all.length - s.back)
          const epoch = s.otherEpoch ? `${current.epoch}x` : current.epoch
          const recovery = yield* history.recover(rooms[s.room]!, { epoch, offset: from })
          const now = yield* Clock.currentTimeMillis
          assert.deepStrictEqual(recovery.position, current)
          if (s.otherEpoch) {
            assert.strictEqual(recovery._tag === "Unrecoverable" && recovery.reason, "EpochChanged")
            continue
          }
          const missing = all.slice(from)
          const fits = missing.length <= limits.maxEntries &&
            missing.reduce((n, e) => n + e.payload.length, 0) <= limits.maxBytes &&
            missing.every((e) => now - e.at <= limits.maxAgeMs)
          if (fits) {
            assert.deepStrictEqual(recovery, { _tag: "Recovered", entries: missing, position: current })
          } else {
            assert.strictEqual(recovery._tag === "Unrecoverable" && recovery.reason, "TooOld")
          }
        }
      }
    }), { fastCheck: { numRuns: 60 } })
})
