/**
 * Cluster mode in-process: several chat nodes (each its own Redis
 * connections, History / Presence layers and node id) on one Redis, raw
 * clients on different nodes. Real Redis: `REDIS_URL` (default
 * redis://127.0.0.1:6379); each test its own key prefix, deleted after.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as C from "./fixtures/Cluster.js"
import * as P from "./fixtures/Processes.js"

const rooms = ["#a", "#b"] as const

/** Starts `count` nodes on one prefix; returns their ports and a close for all. */
const nodes = async (count: number, keyPrefix: string, url?: string, rateLimit?: Parameters<typeof C.node>[0]["rateLimit"]) => {
  const scope = Effect.runSync(Scope.make())
  const ports: Array<number> = []
  for (let i = 0; i < count; i++) {
    ports.push(await Effect.runPromise(Scope.extend(C.node({ nodeId: `n${i}`, prefix: keyPrefix, ...(url ? { url } : {}), rateLimit }), scope)))
  }
  return { ports, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

describe("Cluster (in-process)", () => {
  it("three nodes, two rooms: every member sees the same ordered transcript, offsets assigned once; Who and Joined / Left span the nodes", async () => {
    const keyPrefix = C.prefix()
    const cluster = await nodes(3, keyPrefix)
    const peers: Array<C.Peer> = []
    try {
      const users = ["alice", "bob", "carol"]
      for (let i = 0; i < 3; i++) peers.push(await C.login(cluster.ports[i]!, users[i]!))
      for (const room of rooms) {
        for (const peer of peers) {
          peer.send({ _tag: "Join", room })
          await C.joined(peer, room)
        }
      }
      // alice (n0) sees carol (n2) join #b: a notice from another node.
      await peers[0]!.waitFor("carol joined #b", (ms) => ms.some((m) => m._tag === "Joined" && m.user === "carol" && m.room === "#b"))
      // Who lists the members on all nodes.
      peers[1]!.send({ _tag: "Who", room: "#a" })
      await peers[1]!.waitFor("Present", (ms) => ms.some((m) => m._tag === "Present"))
      const present = peers[1]!.messages().find((m) => m._tag === "Present")
      assert.deepStrictEqual(present?._tag === "Present" ? [...present.users] : [], ["alice", "bob", "carol"])

      // Everyone talks at once, in both rooms.
      const perPeer = 8
      for (let n = 0; n < perPeer; n++) {
        for (let i = 0; i < 3; i++) C.say(peers[i]!, n * 2 + (n % 2), `${users[i]} ${n}`, rooms[n % 2]!)
      }
      const total = 3 * perPeer / 2
      await P.eventually(
        () => peers.every((p) => rooms.every((room) => C.transcript(p, room).length === total)),
        10_000,
        "every line everywhere"
      )
      for (const room of rooms) {
        const reference = C.transcript(peers[0]!, room)
        for (const peer of peers) assert.deepStrictEqual(C.transcript(peer, room), reference)
        // Offsets 1..n, each once: assigned once cluster-wide.
        assert.deepStrictEqual(reference.map((line) => Number(line.split(" ")[0])), Array.from({ length: total }, (_, i) => i + 1))
      }
      // Says are pipelined to Redis: each sender's lines still keep its order.
      for (const room of rooms) {
        for (const user of users) {
          const mine = C.transcript(peers[0]!, room).filter((l) => l.includes(` ${user}: `)).map((l) => Number(l.split(" ").pop()))
          assert.deepStrictEqual(mine, [...mine].sort((x, y) => x - y))
          assert.strictEqual(mine.length, perPeer / 2)
        }
      }
      // Each Ack names the offset its line got.
      for (let i = 0; i < 3; i++) {
        const acked = C.acks(peers[i]!)
        assert.strictEqual(acked.length, perPeer)
        for (const ack of acked) {
          const line = C.transcript(peers[0]!, ack.room!).find((l) => l.startsWith(`${ack.offset} `))
          assert.isTrue(line?.includes(`${users[i]}: `), `ack ${ack.id} -> ${line}`)
        }
      }
      // bob leaves #a: members on the other nodes are told.
      peers[1]!.send({ _tag: "Leave", room: "#a" })
      await peers[2]!.waitFor("bob left #a", (ms) => ms.some((m) => m._tag === "Left" && m.user === "bob" && m.room === "#a"))
    } finally {
      for (const peer of peers) peer.socket.destroy()
      await cluster.close()
      await C.cleanup(keyPrefix)
    }
  }, 30_000)

  it("the same name on two nodes is refused; free again once its session ends", async () => {
    const keyPrefix = C.prefix()
    const cluster = await nodes(2, keyPrefix)
    try {
      const first = await C.login(cluster.ports[0]!, "dave")
      assert.strictEqual(C.status(first), 0)
      const second = await C.login(cluster.ports[1]!, "dave")
      assert.notStrictEqual(C.status(second), 0)
      await second.closed
      first.socket.destroy()
      await first.closed
      let third: C.Peer | undefined
      const until = Date.now() + 5000
      while (third === undefined || C.status(third) !== 0) {
        if (Date.now() > until) throw new Error("the name was not freed")
        third?.socket.destroy()
        await new Promise((r) => setTimeout(r, 50))
        third = await C.login(cluster.ports[1]!, "dave")
      }
      assert.strictEqual(C.status(third), 0)
      third.socket.destroy()
    } finally {
      await cluster.close()
      await C.cleanup(keyPrefix)
    }
  }, 20_000)

  it("a line resent to another node (its Ack lost in a failover) is acknowledged at its first offset and not published twice", async () => {
    const keyPrefix = C.prefix()
    const cluster = await nodes(2, keyPrefix)
    try {
      const gus = await C.login(cluster.ports[0]!, "gus")
      const hal = await C.login(cluster.ports[1]!, "hal")
      for (const peer of [gus, hal]) {
        peer.send({ _tag: "Join", room: "#a" })
        await C.joined(peer, "#a")
      }
      C.say(gus, 7, "only once", "#a")
      await gus.waitFor("ack", () => C.acks(gus).length === 1)
      const first = C.acks(gus)[0]!
      gus.socket.destroy()
      await gus.closed
      // As if the Ack had been lost: the client resends from its outbox, on the other node.
      let again: C.Peer | undefined
      const until = Date.now() + 5000
      while (again === undefined || C.status(again) !== 0) {
        if (Date.now() > until) throw new Error("gus could not log in again")
        again?.socket.destroy()
        again = await C.login(cluster.ports[1]!, "gus")
      }
      const resent = again
      resent.send({ _tag: "Join", room: "#a" })
      await C.joined(resent, "#a")
      C.say(resent, 7, "only once", "#a")
      C.say(resent, 7, "same id, another line", "#a")
      await resent.waitFor("two acks", () => C.acks(resent).length === 2)
      const [repeat, other] = C.acks(resent)
      assert.strictEqual(repeat!.offset, first.offset)
      assert.strictEqual(repeat!.epoch, first.epoch)
      assert.strictEqual(other!.offset, first.offset! + 1)
      await hal.waitFor("the other line", () => C.transcript(hal, "#a").length >= 2)
      assert.deepStrictEqual(C.transcript(hal, "#a"), [`1 gus: only once`, `2 gus: same id, another line`])
      resent.socket.destroy()
      hal.socket.destroy()
    } finally {
      await cluster.close()
      await C.cleanup(keyPrefix)
    }
  }, 20_000)

  it("a client resumes on another node: the lines it missed replayed, none twice", async () => {
    const keyPrefix = C.prefix()
    const cluster = await nodes(2, keyPrefix)
    try {
      const erin = await C.login(cluster.ports[0]!, "erin")
      const frank = await C.login(cluster.ports[1]!, "frank")
      for (const peer of [erin, frank]) {
        peer.send({ _tag: "Join", room: "#a" })
        await C.joined(peer, "#a")
      }
      C.say(frank, 1, "before", "#a")
      await erin.waitFor("before", () => C.transcript(erin, "#a").length === 1)
      const last = erin.messages().find((m) => m._tag === "Said")
      erin.socket.destroy()
      await erin.closed
      for (let i = 2; i <= 4; i++) C.say(frank, i, `missed ${i}`, "#a")
      await frank.waitFor("acks", () => C.acks(frank).length === 4)
      // erin comes back on the other node, from where she was.
      assert.isTrue(last?._tag === "Said")
      if (last?._tag !== "Said") return
      let back: C.Peer | undefined
      const until = Date.now() + 5000
      while (back === undefined || C.status(back) !== 0) {
        if (Date.now() > until) throw new Error("erin could not log in again")
        back?.socket.destroy()
        back = await C.login(cluster.ports[1]!, "erin", [{ room: "#a", epoch: last.epoch!, offset: last.offset! }])
      }
      const resumed = back
      await resumed.waitFor("Recovered", (ms) => ms.some((m) => m._tag === "Recovered"))
      C.say(frank, 5, "after", "#a")
      await resumed.waitFor("after", () => C.transcript(resumed, "#a").length === 4)
      assert.deepStrictEqual(C.transcript(resumed, "#a"), ["2 frank: missed 2", "3 frank: missed 3", "4 frank: missed 4", "5 frank: after"])
      resumed.socket.destroy()
      frank.socket.destroy()
    } finally {
      await cluster.close()
      await C.cleanup(keyPrefix)
    }
  }, 20_000)

  it("joining a busy room on another node: RoomJoined's offset splits the room's lines exactly (those up to it before, every later one after, in order)", async () => {
    const keyPrefix = C.prefix()
    // One talker says every line: no per-session rate limit.
    const cluster = await nodes(2, keyPrefix, undefined, { messagesPerSecond: 100_000, burst: 100_000, bytesPerSecond: 2 ** 30 })
    try {
      const talker = await C.login(cluster.ports[0]!, "talker")
      talker.send({ _tag: "Join", room: "#busy" })
      await C.joined(talker, "#busy")
      // Lines flow while eight users join on the other node, one after another.
      const lines = 400
      let said = 0
      const talk = setInterval(() => {
        for (let i = 0; i < 8 && said < lines; i++) C.say(talker, ++said, `line ${said}`, "#busy")
      }, 1)
      const joiners: Array<C.Peer> = []
      for (let j = 0; j < 8; j++) {
        const peer = await C.login(cluster.ports[1]!, `joiner${j}`)
        peer.send({ _tag: "Join", room: "#busy" })
        await C.joined(peer, "#busy")
        joiners.push(peer)
      }
      await P.eventually(() => said === lines, 10_000, "all lines said")
      clearInterval(talk)
      await talker.waitFor("every Ack", () => C.acks(talker).length === lines)
      const top = Math.max(...C.acks(talker).map((a) => a._tag === "Ack" ? a.offset ?? 0 : 0))
      for (const peer of joiners) {
        await peer.waitFor("the last line", (ms) =>
          ms.some((m) => (m._tag === "Said" && m.offset === top) || (m._tag === "RoomJoined" && m.room === "#busy" && m.offset >= top)))
        const messages = peer.messages()
        const at = messages.findIndex((m) => m._tag === "RoomJoined" && m.room === "#busy")
        const joined = messages[at]
        assert.isTrue(joined?._tag === "RoomJoined")
        if (joined?._tag !== "RoomJoined") return
        const offsets = (ms: ReadonlyArray<(typeof messages)[number]>) => ms.flatMap((m) => m._tag === "Said" && m.room === "#busy" ? [m.offset!] : [])
        assert.isTrue(offsets(messages.slice(0, at)).every((o) => o <= joined.offset), "a line after the join came before RoomJoined")
        const after = offsets(messages.slice(at + 1))
        assert.deepStrictEqual(after, Array.from({ length: top - joined.offset }, (_, i) => joined.offset + i + 1))
      }
      for (const peer of [talker, ...joiners]) peer.socket.destroy()
    } finally {
      await cluster.close()
      await C.cleanup(keyPrefix)
    }
  }, 20_000)
})
