/**
 * The key builders under Redis Cluster's hash-tag rule: every key one script
 * touches must hash to one slot, so each room's keys (meta, stream, channel,
 * repeat keys) carry the room as their tag, and each node's presence keys
 * the node id.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RedisHistory from "@tether/redis/RedisHistory"
import * as RedisPresence from "@tether/redis/RedisPresence"
import * as FastCheck from "effect/FastCheck"

/** What Redis Cluster hashes: the text between the first `{` and the first `}` after it, if not empty; else the key. */
const hashTag = (key: string): string => {
  const open = key.indexOf("{")
  if (open < 0) return key
  const close = key.indexOf("}", open + 1)
  if (close < 0 || close === open + 1) return key
  return key.slice(open + 1, close)
}

// Room names as the protocol allows them (Fields.RoomName).
const roomName = FastCheck.stringMatching(/^#[a-z0-9_-]{1,32}$/)
// Repeat keys are user:id:fingerprint, and user names may hold braces.
const repeatKey = FastCheck.tuple(FastCheck.string({ minLength: 1, maxLength: 32 }), FastCheck.nat()).map(([user, id]) => `${user}:${id}:0123abcd`)

describe("Keys", () => {
  it.prop("a room's keys all carry the room as hash tag: one slot", [roomName, repeatKey], ([room, key]) => {
    for (const prefix of ["tether:", "test:1a2b:", ""]) {
      const k = RedisHistory.keys(prefix, room)
      for (const each of [k.meta, k.stream, k.channel, k.repeat(key)]) assert.strictEqual(hashTag(each), room, each)
      assert.strictEqual(new Set([k.meta, k.stream, k.channel, k.repeat(key)]).size, 4)
    }
  })

  it("a node's presence keys carry the node id as hash tag; names and rooms their own", () => {
    const k = RedisPresence.keys("tether:")
    for (const key of [k.alive("n1"), k.memberships("n1"), k.names("n1"), k.sweep("n1")]) assert.strictEqual(hashTag(key), "n1")
    assert.strictEqual(hashTag(k.name("alice")), "alice")
    assert.strictEqual(hashTag(k.room("#ops")), "#ops")
    assert.notStrictEqual(hashTag(k.name("alice")), hashTag(k.name("bob")), "names spread over slots")
  })
})
