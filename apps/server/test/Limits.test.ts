/**
 * No single client can hurt the others: per-session rate limits with a typed
 * refusal, and a budget for connections that have not logged in (in-process,
 * real loopback sockets).
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Message from "@tether/protocol/Message"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Modes from "../src/Modes.js"
import { common as base, frame, type Peer as RawPeer, connect as rawConnect } from "./fixtures/RawChat.js"

/** The fixture's peer, with `messages` read through a call as these tests do. */
interface Peer extends Omit<RawPeer, "messages"> {
  readonly messages: () => ReadonlyArray<Message.Message>
}

const connect = (port: number): Effect.Effect<Peer> =>
  Effect.map(rawConnect(port), (peer) => ({ ...peer, messages: () => peer.messages }))

const until = (check: () => boolean, ms = 3000) =>
  Effect.gen(function*() {
    for (let waited = 0; !check() && waited < ms; waited += 20) yield* Effect.sleep("20 millis")
  })

const withChat = <A>(options: Modes.Common, body: (port: number) => Effect.Effect<A>) =>
  Effect.gen(function*() {
    const running = yield* Modes.chat({ ...options, heartbeat: "off" })
    return yield* body(running.address.port)
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(
      NodeTether.layerServer({ port: 0, backlog: 1024 }),
      Server.Authenticator.layerAnyone,
      Logger.minimumLogLevel(LogLevel.Error)
    ))
  )

const logIn = (port: number, user: string) =>
  Effect.gen(function*() {
    const peer = yield* connect(port)
    peer.socket.write(frame({ _tag: "Login", user, password: "pw" }))
    yield* until(() => peer.messages().some((m) => m._tag === "RoomJoined"))
    return peer
  })

const tags = (peer: Peer, tag: string) => peer.messages().filter((m) => m._tag === tag)

describe("per-session rate limits", () => {
  it.live("a flood of Says: the burst is taken, the rest refused RateLimited with a retry delay; a quiet user is served", () =>
    withChat({ ...base, rateLimit: { messagesPerSecond: 5, burst: 10, bytesPerSecond: 1e9 } }, (port) =>
      Effect.gen(function*() {
        const flooder = yield* logIn(port, "flooder")
        const quiet = yield* logIn(port, "quiet")
        flooder.socket.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => frame({ _tag: "Say", id: i + 1, text: `flood ${i}` }))))
        yield* until(() => tags(flooder, "Ack").length + tags(flooder, "SayRefused").length >= 50)
        const acked = tags(flooder, "Ack").length
        const refused = tags(flooder, "SayRefused") as Array<Message.SayRefused>
        assert.isAtLeast(acked, 10)
        assert.isAtMost(acked, 12, "the burst, and what refilled meanwhile")
        assert.strictEqual(acked + refused.length, 50)
        assert.isTrue(refused.every((r) => r.code === "RateLimited" && (r.retryAfter ?? 0) > 0))
        quiet.socket.write(frame({ _tag: "Say", id: 1, text: "hello" }))
        yield* until(() => tags(quiet, "Ack").length === 1)
        assert.strictEqual(tags(quiet, "Ack").length, 1, "the quiet user's line is taken")
      })))

  it.live("Who costs ten: a burst of Whos is cut short with a RateLimited failure", () =>
    withChat({ ...base, rateLimit: { messagesPerSecond: 5, burst: 30, bytesPerSecond: 1e9 } }, (port) =>
      Effect.gen(function*() {
        const peer = yield* logIn(port, "asker")
        peer.socket.write(Buffer.concat(Array.from({ length: 10 }, () => frame({ _tag: "Who" }))))
        yield* until(() => tags(peer, "Present").length + tags(peer, "Failure").length >= 10)
        assert.strictEqual(tags(peer, "Present").length, 3, "30 tokens: three Whos")
        assert.isTrue((tags(peer, "Failure") as Array<Message.Failure>).every((f) => f.code === "RateLimited"))
      })))

  it.live("input bytes are limited too: a burst of large lines past the byte rate is refused", () =>
    withChat({ ...base, maxFrameBytes: 1024 * 1024, rateLimit: { messagesPerSecond: 1000, burst: 1000, bytesPerSecond: 32 * 1024 } }, (port) =>
      Effect.gen(function*() {
        const peer = yield* logIn(port, "big")
        const text = "y".repeat(16 * 1024)
        peer.socket.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => frame({ _tag: "Say", id: i + 1, text }))))
        yield* until(() => tags(peer, "Ack").length + tags(peer, "SayRefused").length >= 20)
        assert.isBelow(tags(peer, "Ack").length, 20)
        assert.isAtLeast(tags(peer, "SayRefused").length, 10)
      })))
})

describe("admission: connections that have not logged in", () => {
  it.live("an idle flood against --max-connections: real users still get in, the idle ones give way", () =>
    withChat({ ...base, maxConnections: 10, maxPending: 4 }, (port) =>
      Effect.gen(function*() {
        const idle = yield* Effect.forEach(Array.from({ length: 30 }), () => connect(port))
        yield* until(() => idle.filter((p) => !p.closed()).length <= 4)
        assert.isAtMost(idle.filter((p) => !p.closed()).length, 4, "at most the pending budget stays")
        const users = yield* Effect.forEach(["ann", "ben", "cat"], (user) => logIn(port, user))
        for (const user of users) {
          assert.deepInclude(user.messages()[0], { _tag: "LoginResult", status: 0 })
        }
        const evicted = idle.filter((p) => p.closed())
        assert.isTrue(
          evicted.some((p) => p.messages().some((m) => m._tag === "Failure" && m.code === "TooManyConnections")),
          "an evicted peer is told why"
        )
      })))

  it.live("per address: one host holds at most its share of not-logged-in connections", () =>
    withChat({ ...base, maxPendingPerAddress: 3 }, (port) =>
      Effect.gen(function*() {
        const idle = yield* Effect.forEach(Array.from({ length: 12 }), () => connect(port))
        yield* until(() => idle.filter((p) => !p.closed()).length <= 3)
        assert.strictEqual(idle.filter((p) => !p.closed()).length, 3)
        const user = yield* logIn(port, "dan")
        assert.deepInclude(user.messages()[0], { _tag: "LoginResult", status: 0 })
      })))

  it.live("a peer may send only a login's worth of bytes before it has logged in: a 1 MiB frame is cut off, not buffered", () =>
    withChat({ ...base, maxFrameBytes: 4 * 1024 * 1024 }, (port) =>
      Effect.gen(function*() {
        const peer = yield* connect(port)
        const huge = Buffer.from(JSON.stringify({ _tag: "Login", user: "x".repeat(1024 * 1024), password: "pw" }))
        const header = Buffer.alloc(4)
        header.writeUInt32BE(huge.length)
        peer.socket.write(Buffer.concat([header, huge]))
        yield* until(() => peer.closed(), 3000)
        assert.isTrue(peer.closed(), "closed before its frame was complete")
        const user = yield* logIn(port, "eve")
        assert.deepInclude(user.messages()[0], { _tag: "LoginResult", status: 0 })
      })))
})
