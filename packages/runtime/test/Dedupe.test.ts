import { assert, describe, it } from "@effect/vitest"
import * as Dedupe from "@tether/runtime/Dedupe"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"

describe("Dedupe", () => {
  it.effect("a repeat of a published line is Done with its Ack value; in flight while publishing", () =>
    Effect.gen(function*() {
      const dedupe = yield* Dedupe.make<number>()
      const first = dedupe.begin("alice", 1, "#lobby\nhi")
      assert.strictEqual(first._tag, "New")
      assert.strictEqual(dedupe.begin("alice", 1, "#lobby\nhi")._tag, "InFlight")
      if (first._tag === "New") first.complete(42)
      assert.deepStrictEqual(dedupe.begin("alice", 1, "#lobby\nhi"), { _tag: "Done", value: 42 })
      assert.strictEqual(dedupe.begin("bob", 1, "#lobby\nhi")._tag, "New", "another user's id 1 is another line")
      assert.strictEqual(dedupe.begin("alice", 2, "#lobby\nhi")._tag, "New")
    }))

  it.effect("the same id with other content is a new line (a restarted client reusing ids)", () =>
    Effect.gen(function*() {
      const dedupe = yield* Dedupe.make<string>()
      const first = dedupe.begin("alice", 7, "#lobby\nhello")
      if (first._tag === "New") first.complete("a")
      const other = dedupe.begin("alice", 7, "#lobby\nsomething else")
      assert.strictEqual(other._tag, "New")
      // the late completion of a replaced record changes nothing
      if (first._tag === "New") first.complete("stale")
      if (other._tag === "New") other.complete("b")
      assert.deepStrictEqual(dedupe.begin("alice", 7, "#lobby\nsomething else"), { _tag: "Done", value: "b" })
      assert.strictEqual(dedupe.begin("alice", 7, "#ops\nsomething else")._tag, "New", "the room is part of the content")
    }))

  it.effect("an abandoned line (publish failed) may be tried again", () =>
    Effect.gen(function*() {
      const dedupe = yield* Dedupe.make<number>()
      const first = dedupe.begin("alice", 1, "x")
      if (first._tag === "New") first.abandon()
      const retry = dedupe.begin("alice", 1, "x")
      assert.strictEqual(retry._tag, "New")
      if (first._tag === "New") first.abandon() // stale: must not remove the retry
      assert.strictEqual(dedupe.begin("alice", 1, "x")._tag, "InFlight")
    }))

  it.effect("pairs are remembered for the window (TestClock), then forgotten", () =>
    Effect.gen(function*() {
      const dedupe = yield* Dedupe.make<number>({ window: "10 minutes" })
      const first = dedupe.begin("alice", 1, "x")
      if (first._tag === "New") first.complete(1)
      yield* TestClock.adjust("5 minutes")
      const second = dedupe.begin("alice", 2, "y")
      if (second._tag === "New") second.complete(2)
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual(dedupe.begin("alice", 1, "x")._tag, "Done", "exactly 10 minutes: still remembered")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(dedupe.begin("alice", 1, "x")._tag, "New")
      assert.strictEqual(dedupe.begin("alice", 2, "y")._tag, "Done")
      yield* TestClock.adjust("6 minutes")
      dedupe.begin("carol", 9, "z")
      assert.strictEqual(dedupe.size(), 2, "alice 2 expired; alice 1 (again) and carol 9 remain")
    }))

  it.effect("at most maxEntries pairs are held: the oldest leave first", () =>
    Effect.gen(function*() {
      const dedupe = yield* Dedupe.make<number>({ maxEntries: 3 })
      for (let id = 1; id <= 5; id++) {
        const seen = dedupe.begin("alice", id, "x")
        if (seen._tag === "New") seen.complete(id)
      }
      assert.strictEqual(dedupe.size(), 3)
      assert.deepStrictEqual(dedupe.begin("alice", 5, "x"), { _tag: "Done", value: 5 })
      assert.deepStrictEqual(dedupe.begin("alice", 3, "x"), { _tag: "Done", value: 3 })
      assert.strictEqual(dedupe.begin("alice", 2, "x")._tag, "New")
      assert.strictEqual(dedupe.size(), 3)
    }))

  it("the default window outlasts the client's reconnect span", () => {
    // Client defaults: 10 attempts, exponential from 1 s, x2, capped at 32 s.
    let span = 0
    for (let attempt = 0; attempt < 10; attempt++) span += Math.min(1_000 * 2 ** attempt, 32_000)
    // jittered by up to 20%, and a margin of 2x for lines queued while the last attempt runs
    assert.isAbove(Duration.toMillis(Dedupe.defaultWindow), span * 1.2 * 2)
  })
})
