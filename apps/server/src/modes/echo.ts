/** Echo mode (`Modes.echo`): every frame back unchanged, the benchmark's byte contract. */
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Server from "@tether/runtime/Server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Modes from "../Modes.js"
import { running, serverOptions } from "./shared.js"

const PING = new TextEncoder().encode("PING")

export const echo = (options: Modes.EchoOptions): Effect.Effect<Modes.Running, never, Modes.Requirements> =>
  Effect.gen(function*() {
    const interval = options.heartbeatInterval
    const timeout = options.heartbeatTimeout ?? (interval ? Duration.times(interval, 3) : undefined)
    const heartbeat: Heartbeat.Policy = interval !== undefined && timeout !== undefined
      ? { ...Heartbeat.ping({ interval, timeout }), answers: false }
      : timeout !== undefined
      ? { ...Heartbeat.idle({ timeout }), answers: false }
      : Heartbeat.off
    const server = yield* Server.make<Uint8Array>({
      ...serverOptions(options),
      framing: options.framing === "lines"
        ? Frame.lines({ maxLineBytes: options.maxFrameBytes })
        : Frame.lengthPrefixed({ maxFrameBytes: options.maxFrameBytes }),
      codec: Codec.bytes,
      dialect: { ...Heartbeat.bytes, ping: () => PING },
      heartbeat,
      outbound: { overflow: "backpressure" },
      // Backpressure: a peer that does not read its echoes stops being read.
      handler: (session, frame) => void session.unsafeSend(frame)
    })
    return running(server)
  })
