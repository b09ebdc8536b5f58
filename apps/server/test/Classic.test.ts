/**
 * Classic mode against Go-reference-style peers (in-process, real loopback
 * sockets): any number of sessions for the same credentials, each with its own
 * heartbeat and kick, as the Go reference server allows.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeTether from "@tether/node/NodeTether"
import * as Server from "@tether/runtime/Server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Modes from "../src/Modes.js"
import * as Peer from "./fixtures/ClassicPeer.js"

const common: Modes.Common = {
  heartbeatInterval: Duration.millis(100),
  heartbeatTimeout: Duration.millis(500),
  loginTimeout: Duration.seconds(2),
  maxFrameBytes: 64 * 1024,
  maxConnections: undefined,
  drainTimeout: Duration.seconds(2)
}

const withClassic = <A>(body: (running: Modes.Running) => Promise<A>) =>
  Effect.gen(function*() {
    const running = yield* Modes.classic(common)
    return yield* Effect.promise(() => body(running))
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(
      NodeTether.layerServer({ port: 0, backlog: 1024 }),
      Server.Authenticator.layerUsers({ mayee: "mayee" }),
      Logger.minimumLogLevel(LogLevel.Warning)
    ))
  )

const loggedIn = async (port: number, count: number) => {
  const peers = await Promise.all(Array.from({ length: count }, () => Peer.connect(port)))
  await Peer.eventually(() => peers.every((p) => p.statuses().length > 0), 5000, "every LoginResponse")
  return peers
}

describe("classic mode: many sessions per user", () => {
  for (const count of [2, 50]) {
    it.live(`${count} concurrent sessions for mayee / mayee all log in and are each served`, () =>
      withClassic(async (running) => {
        const peers = await loggedIn(running.address.port, count)
        assert.deepStrictEqual(peers.map((p) => p.statuses()), peers.map(() => [0]))
        for (const peer of peers) peer.send({ _tag: "ClientDemo" })
        await Peer.eventually(() => peers.every((p) => p.serverDemos() === 1), 5000, "a ServerDemo for each")
        // The registry tells the sessions apart: one entry each, distinct ids and remote ports.
        const sessions = running.sessions()
        assert.strictEqual(sessions.length, count)
        assert.isTrue(sessions.every((s) => s.user === "mayee"))
        assert.strictEqual(new Set(sessions.map((s) => s.id)).size, count)
        assert.strictEqual(new Set(sessions.map((s) => s.remote)).size, count)
        for (const peer of peers) peer.socket.destroy()
      }))
  }

  it.live("one mute session of fifty is kicked alone; the other 49 keep being served", () =>
    withClassic(async (running) => {
      const peers = await loggedIn(running.address.port, 50)
      const mute = peers[17]!
      mute.mute = true
      await mute.closed
      // Well past the mute one's timeout, everyone else is still there and served.
      const others = peers.filter((p) => p !== mute)
      assert.isTrue(others.every((p) => !p.isClosed()))
      for (const peer of others) peer.send({ _tag: "ClientDemo" })
      await Peer.eventually(() => others.every((p) => p.serverDemos() === 1), 5000, "ServerDemos after the kick")
      assert.strictEqual(running.sessions().length, 49)
      assert.isTrue(others.every((p) => p.heartBeats() >= 3), "heartbeats kept flowing to the others")
      for (const peer of others) peer.socket.destroy()
    }))

  it.live("a second Login on one connection still gets 100, and that session carries on (as the Go server)", () =>
    withClassic(async (running) => {
      const [peer, other] = await loggedIn(running.address.port, 2)
      peer!.send({ _tag: "Login", username: "mayee", password: "mayee" })
      await Peer.eventually(() => peer!.statuses().length === 2, 3000, "the second LoginResponse")
      assert.deepStrictEqual(peer!.statuses(), [0, 100])
      peer!.send({ _tag: "ClientDemo" })
      await Peer.eventually(() => peer!.serverDemos() === 1, 3000, "a ServerDemo after the 100")
      assert.isFalse(peer!.isClosed())
      assert.deepStrictEqual(other!.statuses(), [0])
      assert.strictEqual(running.sessions().length, 2)
      peer!.socket.destroy()
      other!.socket.destroy()
    }))

  it.live("a wrong password gets 5 and a close, and does not disturb the live sessions of that user", () =>
    withClassic(async (running) => {
      const [live] = await loggedIn(running.address.port, 1)
      const wrong = await Peer.connect(running.address.port, { username: "mayee", password: "nope" })
      await wrong.closed
      assert.deepStrictEqual(wrong.statuses(), [5])
      assert.isFalse(live!.isClosed())
      assert.strictEqual(running.sessions().length, 1)
      live!.socket.destroy()
    }))
})
