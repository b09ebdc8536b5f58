import { assert, describe, it } from "@effect/vitest"
import * as Outbox from "@tether/runtime/Outbox"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"

describe("Outbox", () => {
  it("holds 1,000 lines by default, then refuses clearly without dropping any", () => {
    const outbox = Outbox.unsafeMake({ firstId: 1 })
    assert.strictEqual(outbox.capacity, 1_000)
    for (let i = 0; i < 1_000; i++) assert.isTrue(Either.isRight(outbox.offer("#lobby", `line ${i}`)))
    const refused = outbox.offer("#lobby", "one too many")
    assert.isTrue(Either.isLeft(refused))
    if (Either.isLeft(refused)) {
      assert.strictEqual(refused.left._tag, "OutboxFull")
      assert.strictEqual(refused.left.message, "not queued: 1000 lines are already waiting to be sent")
    }
    assert.strictEqual(outbox.size(), 1_000)
    assert.strictEqual(outbox.pending()[0]!.text, "line 0")
    assert.isTrue(outbox.ack(1))
    assert.isTrue(Either.isRight(outbox.offer("#lobby", "now there is room")))
  })

  it("lines keep their ids and order across resends; only an Ack (or a drop) removes one", () => {
    const outbox = Outbox.unsafeMake({ capacity: 5, firstId: 0xffff_fffe })
    const ids = ["a", "b", "c", "d"].map((text) => Either.getOrThrow(outbox.offer("#x", text)).id)
    assert.deepStrictEqual(ids, [0xffff_fffe, 0xffff_ffff, 0, 1], "ids wrap at 2^32")
    const first = outbox.pending()
    const again = outbox.pending()
    assert.deepStrictEqual(first, again)
    assert.isTrue(outbox.ack(0xffff_ffff))
    assert.isFalse(outbox.ack(0xffff_ffff), "a repeated Ack removes nothing")
    assert.isFalse(outbox.ack(12345))
    assert.deepStrictEqual(outbox.drop(0)?.text, "c")
    assert.isUndefined(outbox.drop(0))
    assert.deepStrictEqual(outbox.pending().map((l) => [l.id, l.room, l.text]), [[0xffff_fffe, "#x", "a"], [1, "#x", "d"]])
  })

  it("an id still waiting is never handed out again", () => {
    const outbox = Outbox.unsafeMake({ capacity: 3, firstId: 7 })
    Either.getOrThrow(outbox.offer("#x", "a")) // 7
    Either.getOrThrow(outbox.offer("#x", "b")) // 8
    outbox.ack(8)
    const unsafe = Outbox.unsafeMake({ capacity: 3, firstId: 0xffff_ffff })
    Either.getOrThrow(unsafe.offer("#x", "a")) // 0xffffffff
    Either.getOrThrow(unsafe.offer("#x", "b")) // 0
    const ids = new Set(unsafe.pending().map((l) => l.id))
    assert.strictEqual(ids.size, 2)
  })

  it.effect("make draws the first id at random", () =>
    Effect.gen(function*() {
      const firsts = new Set<number>()
      for (let i = 0; i < 5; i++) {
        const outbox = yield* Outbox.make()
        firsts.add(Either.getOrThrow(outbox.offer("#x", "a")).id)
      }
      assert.isAbove(firsts.size, 1)
    }))

  // Model: a FIFO of (id, text); acks remove any id; the outbox's pending
  // is always the model, and ids are unique among pending lines.
  it.prop("pending is exactly the un-acked lines in offer order, never more than capacity", [
    FastCheck.array(FastCheck.oneof(FastCheck.constant("offer" as const), FastCheck.nat(20)), { maxLength: 100 }),
    FastCheck.integer({ min: 0, max: 8 })
  ], ([ops, capacity]) => {
    const outbox = Outbox.unsafeMake({ capacity, firstId: 0xffff_fff0 })
    const model: Array<Outbox.Line> = []
    let n = 0
    for (const op of ops) {
      if (op === "offer") {
        const result = outbox.offer("#r", `t${n++}`)
        if (model.length < capacity) {
          assert.isTrue(Either.isRight(result))
          model.push(Either.getOrThrow(result))
        } else {
          assert.isTrue(Either.isLeft(result))
        }
      } else {
        const line = model[op % Math.max(1, model.length)]
        if (line !== undefined) {
          assert.isTrue(outbox.ack(line.id))
          model.splice(model.indexOf(line), 1)
        }
      }
      assert.deepStrictEqual(outbox.pending(), model)
      assert.strictEqual(new Set(model.map((l) => l.id)).size, model.length)
    }
  })
})
