/** Classic mode (`Modes.classic`): the reference server of the Go heartbeat demo, byte for byte. */
import * as Classic from "@tether/protocol/Classic"
import * as Frame from "@tether/protocol/Frame"
import * as ClassicProtocol from "@tether/runtime/ClassicProtocol"
import * as Server from "@tether/runtime/Server"
import * as Effect from "effect/Effect"
import type * as Modes from "../Modes.js"
import { running, serverOptions, tcp } from "./shared.js"

export const classic = (options: Modes.Common): Effect.Effect<Modes.Running, never, Modes.Requirements> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    let port = 0
    const server = yield* Server.make<Classic.Packet>({
      ...serverOptions(options),
      framing: Frame.classic({ maxPacketBytes: Math.min(options.maxFrameBytes, Frame.classicMaxPacketBytes) }),
      codec: Classic.codec,
      dialect: ClassicProtocol.dialect(now),
      heartbeat: ClassicProtocol.serverHeartbeat({
        ...(options.heartbeatInterval ? { interval: options.heartbeatInterval } : {}),
        ...(options.heartbeatTimeout ? { timeout: options.heartbeatTimeout } : {})
      }),
      login: ClassicProtocol.serverLogin(now),
      // The Go reference server accepts any number of sessions for the same credentials.
      sessionsPerUser: "many",
      handler: (session, packet) => {
        const replies = packet.messages.flatMap((m): Array<Classic.Message> =>
          m._tag === "ClientDemo" ? [{ _tag: "ServerDemo", addr: "127.0.0.1", port, remark: "server response: ok" }] : []
        )
        if (replies.length === 0) return
        session.unsafeSend({ seq: 0, sendTime: now(), messages: replies as [Classic.Message, ...Array<Classic.Message>] })
      }
    })
    port = tcp(server).port
    return running(server)
  })
