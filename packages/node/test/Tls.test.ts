import { assert, describe, it } from "@effect/vitest"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Client from "@tether/runtime/Client"
import * as Server from "@tether/runtime/Server"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as net from "node:net"
import * as tls from "node:tls"
import * as Certificates from "@tether/testing/Certificates"

const framing = Frame.lengthPrefixed()
const codec = Codec.json(Message.Message)
const certs = Certificates.make()

/** A chat server (Who -> Present) over TLS on 127.0.0.1 port 0. */
const serveTls = (tlsOptions: Partial<NodeTether.TlsServerOptions> = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Layer.merge(
      NodeTether.layerServer({ port: 0, tls: { cert: certs.pem.serverCert, key: certs.pem.serverKey, ...tlsOptions } }),
      Server.Authenticator.layerAnyone
    ))
    const server: Server.Server<Message.Message> = yield* Server.make<Message.Message>({
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      login: TetherProtocol.serverLogin,
      handler: (session, message) =>
        message._tag === "Who"
          ? void session.connection.unsafeSend(Message.Present.make({ users: server.registry.list().map((s) => s.user!) }))
          : undefined
    }).pipe(Effect.provide(context))
    return { server, port: (server.address as SocketServer.TcpAddress).port }
  })

/** Logs in over TLS as `user`, asks Who, returns who is present. */
const chat = (port: number, user: string, tlsOptions: NodeTether.TlsConnectOptions) =>
  Effect.gen(function*() {
    let resolve!: (users: ReadonlyArray<string>) => void
    const present = new Promise<ReadonlyArray<string>>((r) => (resolve = r))
    const client = yield* Client.make({
      connect: NodeTether.connect({ port, connectTimeout: "2 seconds", tls: tlsOptions }),
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      login: TetherProtocol.clientLogin(user, "pw"),
      reconnect: false,
      onMessage: (m) => Effect.sync(() => m._tag === "Present" && resolve(m.users))
    })
    yield* client.awaitConnected
    yield* client.send(Message.Who.make({}))
    return yield* Effect.promise(() => present).pipe(Effect.timeout("3 seconds"))
  }).pipe(Effect.scoped)

/** A raw socket's fate: "closed" once the server closed it, with what it received. */
const closedWith = (socket: net.Socket) =>
  Effect.async<{ received: number; error: string | undefined }>((resume) => {
    let received = 0
    let error: string | undefined
    socket.on("data", (chunk) => (received += chunk.length))
    socket.on("error", (e) => (error = (e as NodeJS.ErrnoException).code ?? e.message))
    socket.on("close", () => resume(Effect.succeed({ received, error })))
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the server kept the socket open") }))

describe("TLS", () => {
  it.scopedLive("chat over TLS: login, a request and its answer, the server's sockets still carry the transport", () =>
    Effect.gen(function*() {
      const { port, server } = yield* serveTls()
      const users = yield* chat(port, "alice", { ca: certs.pem.ca })
      assert.deepStrictEqual(users, ["alice"])
      assert.strictEqual(server.stats.accepted, 1)
    }))

  it.scopedLive("a plaintext client gets a closed connection and the server carries on", () =>
    Effect.gen(function*() {
      const { port } = yield* serveTls()
      const socket = net.connect({ host: "127.0.0.1", port })
      socket.on("connect", () => socket.write(framing.encode(codec.encode({ _tag: "Login", user: "eve", password: "pw" }) as Uint8Array) as Uint8Array))
      const fate = yield* closedWith(socket)
      // What it may get back is a TLS alert, never a Tether answer.
      assert.isBelow(fate.received, 64)
      assert.deepStrictEqual(yield* chat(port, "bob", { ca: certs.pem.ca }), ["bob"])
    }))

  it.scopedLive("a client that does not trust the server's CA cannot connect; --insecure can", () =>
    Effect.gen(function*() {
      const { port } = yield* serveTls()
      const refused = yield* Effect.either(chat(port, "carol", { ca: certs.pem.otherCa }))
      assert.isTrue(Either.isLeft(refused))
      assert.match(String((refused as Either.Left<{ reason: string }, unknown>).left.reason), /certificate|self.signed|verify/i)
      assert.deepStrictEqual(yield* chat(port, "carol", { insecure: true }), ["carol"])
    }))

  it.scopedLive("client-certificate auth: a client without a certificate is refused, one with a certificate from the CA logs in", () =>
    Effect.gen(function*() {
      const { port, server } = yield* serveTls({ ca: certs.pem.ca, requireClientCert: true })
      // Without a certificate: the handshake fails (TLS 1.3: right after it), no Tether answer ever comes.
      const bare = tls.connect({ host: "127.0.0.1", port, ca: certs.pem.ca })
      bare.on("secureConnect", () => bare.write(framing.encode(codec.encode({ _tag: "Login", user: "eve", password: "pw" }) as Uint8Array) as Uint8Array))
      const fate = yield* closedWith(bare)
      assert.strictEqual(fate.received, 0)
      assert.isDefined(fate.error)
      const without = yield* Effect.either(chat(port, "eve", { ca: certs.pem.ca }))
      assert.isTrue(Either.isLeft(without))
      assert.strictEqual(server.registry.count(), 0)
      const users = yield* chat(port, "dave", { ca: certs.pem.ca, cert: certs.pem.clientCert, key: certs.pem.clientKey })
      assert.deepStrictEqual(users, ["dave"])
    }))
})
