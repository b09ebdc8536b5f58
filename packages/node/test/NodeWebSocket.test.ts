/**
 * WebSocket as a transport, over real sockets on 127.0.0.1 port 0: one
 * Tether message per WebSocket message both ways, and hostile input (an
 * oversized message, a binary one, garbage JSON, a peer that does not read)
 * ending the connection with the same typed errors and bounds as TCP.
 */
import { assert, describe, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as Socket from "@effect/platform/Socket"
import * as NodeHttp from "@tether/node/NodeHttp"
import * as NodeWebSocket from "@tether/node/NodeWebSocket"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Connection from "@tether/runtime/Connection"
import type { ConnectionError } from "@tether/runtime/ConnectionError"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as net from "node:net"
import WebSocket from "ws"

const maxFrameBytes = 1024

type Behaviour = (connection: Connection.Connection<Message.Message>, batch: ReadonlyArray<Message.Message>) => void

/**
 * An HTTP server on port 0 whose `/ws` sockets run one connection each with
 * `behaviour`; `ended` is the first connection's typed failure.
 */
const serve = (
  behaviour: Behaviour,
  options: {
    readonly outbound?: Connection.OutboundOptions
    readonly onOpen?: (c: Connection.Connection<Message.Message>) => void
    readonly http?: NodeHttp.Options
  } = {}
) =>
  Effect.gen(function*() {
    const ended = yield* Deferred.make<ConnectionError | undefined>()
    const runtime = yield* Effect.runtime<never>()
    const accept = (socket: Socket.Socket) =>
      Effect.flatMap(
        Connection.make(socket, {
          framing: Frame.messages({ maxFrameBytes }),
          codec: Codec.json(Message.Message),
          ...(options.outbound ? { outbound: options.outbound } : {})
        }),
        (connection) =>
          Effect.sync(() => {
            connection.unsafeStart(runtime, (batch) => behaviour(connection, batch), (exit) => {
              const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
              Deferred.unsafeDone(ended, Exit.succeed(error as ConnectionError | undefined))
            })
            options.onOpen?.(connection)
          })
      )
    const upgrade = NodeWebSocket.upgrade("/ws", () => accept, Runtime.runFork(runtime), { maxPayload: maxFrameBytes })
    const address = yield* NodeHttp.serve(HttpRouter.empty, { port: 0, ...options.http, webSockets: [upgrade] })
    return { port: address.port, url: `ws://127.0.0.1:${address.port}/ws`, ended: Deferred.await(ended) }
  })

const open = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly ws: WebSocket; readonly received: Array<string>; readonly closed: Promise<number> }>((resume) => {
      const ws = new WebSocket(url)
      const received: Array<string> = []
      const closed = new Promise<number>((done) => ws.on("close", (code) => done(code)))
      ws.on("message", (data, isBinary) => received.push(isBinary ? "<binary>" : data.toString()))
      ws.on("error", () => {})
      ws.on("open", () => resume(Effect.succeed({ ws, received, closed })))
    }),
    ({ ws }) => Effect.sync(() => ws.terminate())
  )

const echo: Behaviour = (connection, batch) => {
  for (const m of batch) if (m._tag === "Say") connection.unsafeSend(Message.Ack.make({ id: m.id }))
}

describe("NodeWebSocket", () => {
  it.scopedLive("one Tether message per WebSocket text message, both ways, a batch never merged", () =>
    Effect.gen(function*() {
      // Three answers per message: queued in one turn, written as one batch (one writev).
      const { url } = yield* serve((connection, batch) => {
        for (const m of batch) {
          if (m._tag === "Say") for (const k of [0, 100, 200]) connection.unsafeSend(Message.Ack.make({ id: m.id + k }))
        }
      })
      const { received, ws } = yield* open(url)
      for (let id = 1; id <= 5; id++) ws.send(JSON.stringify({ _tag: "Say", id, text: `line ${id}` }))
      yield* Effect.promise(() => waitUntil(() => received.length === 15))
      assert.deepStrictEqual(
        received.map((r) => JSON.parse(r)),
        [1, 2, 3, 4, 5].flatMap((id) => [id, id + 100, id + 200]).map((id) => ({ _tag: "Ack", id }))
      )
    }))

  it.scopedLive("a message over the limit: FrameError FrameTooLarge before it is buffered, closed 1009", () =>
    Effect.gen(function*() {
      const { ended, url } = yield* serve(echo)
      const { closed, ws } = yield* open(url)
      ws.send(JSON.stringify({ _tag: "Say", id: 1, text: "x".repeat(maxFrameBytes) }))
      const error = yield* ended
      assert.strictEqual(error?._tag, "FrameError")
      assert.strictEqual((error as Frame.FrameError).reason, "FrameTooLarge")
      assert.strictEqual((error as Frame.FrameError).limit, maxFrameBytes)
      assert.strictEqual(yield* Effect.promise(() => closed), 1009)
    }))

  it.scopedLive("a binary message where text is expected: FrameError BinaryMessage, closed", () =>
    Effect.gen(function*() {
      const { ended, url } = yield* serve(echo)
      const { closed, ws } = yield* open(url)
      ws.send(Buffer.from(JSON.stringify({ _tag: "Who" })), { binary: true })
      const error = yield* ended
      assert.strictEqual(error?._tag, "FrameError")
      assert.strictEqual((error as Frame.FrameError).reason, "BinaryMessage")
      yield* Effect.promise(() => closed)
    }))

  it.scopedLive("garbage JSON, and two JSON texts in one message: DecodeError, closed", () =>
    Effect.gen(function*() {
      for (const garbage of ["{\"_tag\":\"Say\",", "{\"_tag\":\"Who\"}{\"_tag\":\"Who\"}", "{\"_tag\":\"Nope\"}"]) {
        const { ended, url } = yield* serve(echo)
        const { closed, ws } = yield* open(url)
        ws.send(garbage)
        const error = yield* ended
        assert.strictEqual(error?._tag, "DecodeError", garbage)
        yield* Effect.promise(() => closed)
      }
    }))

  it.scopedLive("a peer that does not read: SlowConsumer at the outbound bound, the socket destroyed", () =>
    Effect.gen(function*() {
      const text = "y".repeat(900)
      const { ended, port } = yield* serve(() => {}, {
        outbound: { capacity: 64, maxBytes: 1024 * 1024 },
        // Floods from the open on; the loop is bounded and stops once the connection refuses.
        onOpen: (connection) => {
          let sent = 0
          const flood = () => {
            for (let i = 0; i < 64 && sent < 100_000; i++, sent++) {
              if (!connection.unsafeSend(Message.Said.make({ from: "x", text, at: 0, seq: sent }))) return
            }
            if (sent < 100_000) setImmediate(flood)
          }
          flood()
        }
      })
      // A raw client: upgrades, then never reads a byte.
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const socket = net.connect(port, "127.0.0.1")
          socket.on("error", () => {})
          socket.write(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
          )
          socket.pause()
          return socket
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      const error = yield* ended.pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(error?._tag, "SlowConsumer")
      assert.strictEqual((error as { capacity: number }).capacity, 64)
      // The server destroyed its side: the client sees the end (once it reads again).
      socket.resume()
      yield* Effect.promise(() => new Promise<void>((done) => socket.on("close", () => done())))
    }))

  it.scopedLive("a WebSocket outlives the HTTP server's header and request timeouts", () =>
    Effect.gen(function*() {
      const { url } = yield* serve(echo, { http: { headersTimeout: "1 second", requestTimeout: "1 second" } })
      const { closed, received, ws } = yield* open(url)
      let closedEarly = false
      void closed.then(() => (closedEarly = true))
      yield* Effect.sleep("2500 millis")
      assert.isFalse(closedEarly)
      ws.send(JSON.stringify({ _tag: "Say", id: 9, text: "still here" }))
      yield* Effect.promise(() => waitUntil(() => received.length === 1))
      assert.deepStrictEqual(JSON.parse(received[0]!), { _tag: "Ack", id: 9 })
    }))

  it.scopedLive("requests to other paths go to the router; /ws answers 503 while nothing accepts", () =>
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<never>()
      const upgrade = NodeWebSocket.upgrade("/ws", () => undefined, Runtime.runFork(runtime))
      const address = yield* NodeHttp.serve(HttpRouter.empty, { port: 0, webSockets: [upgrade] })
      const status = (path: string) =>
        Effect.promise(() =>
          new Promise<number>((done) => {
            const ws = new WebSocket(`ws://127.0.0.1:${address.port}${path}`)
            ws.on("unexpected-response", (_request, response) => {
              done(response.statusCode ?? 0)
              ws.terminate()
            })
            ws.on("error", () => {})
          })
        )
      assert.strictEqual(yield* status("/ws"), 503)
      assert.strictEqual(yield* status("/elsewhere"), 404)
    }))
})

const waitUntil = async (check: () => boolean, ms = 5000) => {
  for (const until = Date.now() + ms; Date.now() < until;) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error("timed out")
}
