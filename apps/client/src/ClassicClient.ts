/**
 * The classic demo client: login, a ClientDemo every 2 s, each ServerDemo
 * printed, the server's HeartBeats answered (by the runtime).
 */
import * as ClassicProtocol from "@tether/runtime/ClassicProtocol"
import * as Cli from "@tether/node/Cli"
import * as NodeTether from "@tether/node/NodeTether"
import * as Printable from "@tether/protocol/Printable"
import * as Classic from "@tether/protocol/Classic"
import * as Frame from "@tether/protocol/Frame"
import * as Client from "@tether/runtime/Client"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export interface ClassicOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly heartbeatTimeout: Duration.Duration | undefined
  readonly demoInterval: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly tls?: NodeTether.TlsConnectOptions | undefined
  /** Stop after this many ServerDemos (for scripts and tests); undefined: run until interrupted. */
  readonly count: number | undefined
}

export const run = (options: ClassicOptions) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    let received = 0
    const client = yield* Client.make<Classic.Packet>({
      connect: NodeTether.connect({ host: options.host, port: options.port, connectTimeout: options.connectTimeout, tls: options.tls }),
      framing: Frame.classic(),
      codec: Classic.codec,
      dialect: ClassicProtocol.dialect(now),
      heartbeat: ClassicProtocol.clientHeartbeat(options.heartbeatTimeout ? { timeout: options.heartbeatTimeout } : {}),
      login: ClassicProtocol.clientLogin(now, options.user, options.password),
      reconnect: false,
      onMessage: (packet) =>
        Effect.forEach(packet.messages, (m) =>
          m._tag === "ServerDemo"
            ? Effect.sync(() => {
              received++
              process.stdout.write(`ServerDemo addr=${Printable.escape(m.addr)} port=${m.port} remark=${Printable.escape(JSON.stringify(m.remark))}\n`)
            })
            : Effect.void, { discard: true })
    })
    yield* client.awaitConnected.pipe(
      Effect.mapError((error) =>
        error._tag === "LoginRefused"
          ? Cli.exitWith(3, `login refused (status ${error.status}): ${error.reason}`)
          : Cli.exitWith(4, `could not connect: ${error.reason}`)
      )
    )
    process.stdout.write(`logged in as ${options.user}\n`)
    for (;;) {
      yield* client.send(Classic.packet(now(), { _tag: "ClientDemo" })).pipe(
        Effect.mapError((error) => Cli.exitWith(1, `connection lost: ${error.reason}`))
      )
      yield* Effect.sleep(options.demoInterval)
      if (options.count !== undefined && received >= options.count) return
      const state = yield* client.state
      if (state._tag === "GaveUp") return yield* Cli.exitWith(1, `connection lost: ${state.reason}`)
    }
  }).pipe(Effect.scoped)
