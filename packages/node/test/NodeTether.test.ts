import { assert, describe, it } from "@effect/vitest"
import * as SocketServer from "@effect/platform/SocketServer"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Server from "@tether/runtime/Server"
import * as Transport from "@tether/runtime/Transport"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as net from "node:net"

/** A raw node:net client: connects, sends `bytes`, resolves with what it read once `until` says enough. */
const exchange = (port: number, bytes: Uint8Array, until: (received: Buffer) => boolean) =>
  Effect.async<{ received: Buffer; socket: net.Socket }, Error>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let received = Buffer.alloc(0)
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("connect", () => socket.write(bytes))
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk])
      if (until(received)) resume(Effect.succeed({ received, socket }))
    })
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no answer within 5 s") }))

const framing = Frame.lengthPrefixed()

/**
 * A Tether server of raw frames over NodeTether.layerServer on 127.0.0.1 port 0. Layer.build:
 * the listener lives as long as the test's scope, not just Server.make.
 */
const echo: Server.Options<Uint8Array, never, never>["handler"] = (session, payload) => void session.unsafeSend(payload)

const serve = (
  handler: Server.Options<Uint8Array, never, never>["handler"],
  outbound?: Server.Options<Uint8Array, never, never>["outbound"]
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.merge(NodeTether.layerServer({ port: 0 }), Server.Authenticator.layerAnyone))
    return yield* Server.make<Uint8Array>({ framing, codec: Codec.bytes, handler, ...(outbound ? { outbound } : {}) })
      .pipe(Effect.provide(context))
  })

describe("NodeTether.layerServer", () => {
  it.scopedLive("listens on 127.0.0.1 port 0; its sockets carry a transport and still run as platform Sockets", () =>
    Effect.gen(function*() {
      const server = yield* NodeTether.makeServer({ port: 0 })
      const address = server.address as SocketServer.TcpAddress
      assert.strictEqual(address.hostname, "127.0.0.1")
      assert.isAbove(address.port, 0)
      const carried = yield* Deferred.make<boolean>()
      // A plain platform echo: the socket is run the @effect/platform way.
      yield* Effect.forkScoped(server.run((socket) =>
        Effect.gen(function*() {
          yield* Deferred.succeed(carried, Transport.fromSocket(socket) !== undefined)
          const write = yield* socket.writer
          yield* socket.run((chunk) => write(chunk))
        }).pipe(Effect.scoped, Effect.forkDaemon)
      ))
      const { received, socket } = yield* exchange(address.port, new TextEncoder().encode("hello"), (r) => r.length >= 5)
      socket.destroy()
      assert.strictEqual(received.toString(), "hello")
      assert.isTrue(yield* Deferred.await(carried))
    }))

  it.scopedLive("a Tether server over it echoes frames, reads the peer address, and counts the connection closed when the peer leaves", () =>
    Effect.gen(function*() {
      const server = yield* serve(echo)
      const port = (server.address as SocketServer.TcpAddress).port
      const payloads = ["one", "two", "three"].map((s) => new TextEncoder().encode(s))
      const wire = framing.encodeAll(payloads) as Uint8Array
      const { received, socket } = yield* exchange(port, wire, (r) => r.length >= wire.length)
      assert.deepStrictEqual(new Uint8Array(received), wire)
      assert.strictEqual(server.connections(), 1)
      const remote = server.registry.list()[0]?.remote ?? ""
      assert.match(remote, /^127\.0\.0\.1:\d+$/)
      assert.strictEqual(remote, `127.0.0.1:${socket.localPort}`)
      socket.end()
      for (let i = 0; i < 200 && server.connections() > 0; i++) yield* Effect.sleep("10 millis")
      assert.strictEqual(server.connections(), 0)
      assert.strictEqual(server.stats.closed, 1)
      assert.strictEqual(server.stats.framesIn, 3)
    }))

  it.scopedLive("many peers at once each get exactly their own frames back (write buffers shared across connections)", () =>
    Effect.gen(function*() {
      const server = yield* serve(echo)
      const port = (server.address as SocketServer.TcpAddress).port
      const peers = 20
      // 300 frames of 1..200 bytes per peer, every byte naming its peer and frame:
      // batches of a few KiB, many per 64 KiB slab, interleaved across peers.
      const wires = Array.from({ length: peers }, (_, peer) =>
        framing.encodeAll(Array.from({ length: 300 }, (_, i) => new Uint8Array(1 + ((peer * 7 + i) % 200)).fill((peer * 31 + i) & 0xff))) as Uint8Array
      )
      const results = yield* Effect.forEach(
        wires,
        (wire) => Effect.map(exchange(port, wire, (r) => r.length >= wire.length), ({ received, socket }) => {
          socket.destroy()
          return received
        }),
        { concurrency: "unbounded" }
      )
      results.forEach((received, peer) => assert.isTrue(Buffer.from(wires[peer]!).equals(received), `peer ${peer} got its own bytes`))
    }))

  it.scopedLive("a peer that reads late still gets every byte in order: writes wait for the socket to drain", () =>
    Effect.gen(function*() {
      // 32 MiB in all, more than loopback's socket buffers hold: large frames
      // (written by reference) between small ones (copied into shared write
      // buffers, which must stay intact while Node holds them unwritten).
      const frames = 256
      const sizeOf = (i: number) => (i % 2 === 0 ? 256 * 1024 : 1 + (i % 100))
      const server = yield* serve((session) => {
        for (let i = 0; i < frames; i++) session.connection.unsafeSend(new Uint8Array(sizeOf(i)).fill(i & 0xff))
      }, { maxBytes: 64 * 1024 * 1024 }) // 32 MiB queued at once: over the default 16 MiB bound
      const port = (server.address as SocketServer.TcpAddress).port
      let expected = 0
      for (let i = 0; i < frames; i++) expected += 4 + sizeOf(i)
      const received = yield* Effect.async<Buffer, Error>((resume) => {
        const socket = net.connect({ host: "127.0.0.1", port })
        const chunks: Array<Buffer> = []
        let length = 0
        socket.on("error", (error) => resume(Effect.fail(error)))
        socket.on("connect", () => {
          socket.write(framing.encode(new Uint8Array([1])) as Uint8Array)
          // Read nothing for a while: the server's writes fill the socket.
          socket.pause()
          setTimeout(() => socket.resume(), 300)
        })
        socket.on("data", (chunk) => {
          chunks.push(chunk)
          length += chunk.length
          if (length >= expected) resume(Effect.succeed(Buffer.concat(chunks)))
        })
        return Effect.sync(() => socket.destroy())
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("not all frames arrived") }))
      assert.strictEqual(received.length, expected)
      let at = 0
      for (let i = 0; i < frames; i++) {
        assert.strictEqual(received.readUInt32BE(at), sizeOf(i))
        const body = received.subarray(at + 4, at + 4 + sizeOf(i))
        assert.isTrue(body.every((byte) => byte === (i & 0xff)), `frame ${i} intact`)
        at += 4 + sizeOf(i)
      }
    }))

  it.scopedLive("a port already in use is a SocketServerError, not a crash", () =>
    Effect.gen(function*() {
      const first = yield* NodeTether.makeServer({ port: 0 })
      const port = (first.address as SocketServer.TcpAddress).port
      const error = yield* Effect.flip(NodeTether.makeServer({ port }))
      assert.strictEqual(error._tag, "SocketServerError")
      assert.strictEqual(error.reason, "Open")
    }))
})
