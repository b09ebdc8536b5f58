import { assert, describe, it } from "@effect/vitest"
import * as Presence from "@tether/runtime/Presence"
import * as Effect from "effect/Effect"

describe("Presence.layerMemory", () => {
  it.effect("a name is held by one session at a time; a stale release is a no-op", () =>
    Effect.gen(function*() {
      const presence = yield* Presence.Presence
      assert.isTrue(yield* presence.claim("alice", "s1"))
      assert.isTrue(yield* presence.claim("alice", "s1"), "the holder may claim again")
      assert.isFalse(yield* presence.claim("alice", "s2"))
      yield* presence.release("alice", "s2")
      assert.isFalse(yield* presence.claim("alice", "s2"), "s2 never held it: its release changed nothing")
      yield* presence.release("alice", "s1")
      assert.isTrue(yield* presence.claim("alice", "s2"))
      assert.isTrue(yield* presence.claim("bob", "s1"))
    }).pipe(Effect.provide(Presence.layerMemory)))

  it.effect("members per room, sorted, limited; leaving empties a room", () =>
    Effect.gen(function*() {
      const presence = yield* Presence.Presence
      for (const user of ["carol", "alice", "bob"]) yield* presence.join("#lobby", user)
      yield* presence.join("#ops", "bob")
      yield* presence.join("#lobby", "alice")
      assert.deepStrictEqual(yield* presence.members("#lobby"), ["alice", "bob", "carol"])
      assert.deepStrictEqual(yield* presence.members("#lobby", { limit: 2 }), ["alice", "bob"])
      assert.deepStrictEqual(yield* presence.members("#lobby", { limit: 0 }), [])
      assert.deepStrictEqual(yield* presence.members("#ops"), ["bob"])
      yield* presence.leave("#ops", "bob")
      yield* presence.leave("#ops", "nobody")
      yield* presence.leave("#nowhere", "bob")
      assert.deepStrictEqual(yield* presence.members("#ops"), [])
      yield* presence.leave("#lobby", "bob")
      assert.deepStrictEqual(yield* presence.members("#lobby"), ["alice", "carol"])
    }).pipe(Effect.provide(Presence.layerMemory)))

  it.scoped("nobody is lost in memory", () =>
    Effect.gen(function*() {
      const presence = yield* Presence.Presence
      const lost: Array<string> = []
      yield* presence.lost((room, user) => Effect.sync(() => lost.push(`${room}:${user}`)))
      yield* presence.join("#lobby", "alice")
      yield* presence.leave("#lobby", "alice")
      assert.deepStrictEqual(lost, [])
    }).pipe(Effect.provide(Presence.layerMemory)))
})
