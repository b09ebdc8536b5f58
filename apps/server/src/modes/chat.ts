/** Chat mode (`Modes.chat`): Tether's chat protocol on `ChatServer`. */
import * as Frame from "@tether/protocol/Frame"
import * as ChatServer from "@tether/runtime/ChatServer"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Modes from "../Modes.js"
import { running, serverOptions } from "./shared.js"

export const chat = (options: Modes.ChatOptions): Effect.Effect<Modes.Running, never, Modes.Requirements> =>
  Effect.gen(function*() {
    const interval = options.heartbeatInterval ?? Duration.seconds(5)
    const timeout = options.heartbeatTimeout ?? Duration.seconds(17)
    const heartbeat = options.heartbeat === "ping"
      ? Heartbeat.ping({ interval, timeout })
      : options.heartbeat === "idle"
      ? Heartbeat.idle({ timeout })
      : options.heartbeat === "adaptive"
      ? Heartbeat.adaptive({ timeout, ...(options.heartbeatInterval ? { max: interval } : {}) })
      : Heartbeat.off
    const server = yield* ChatServer.make({
      heartbeat,
      ...serverOptions(options),
      maxFrameBytes: options.maxFrameBytes,
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
      historyLimits: {
        ...(options.historySize !== undefined ? { maxEntries: options.historySize } : {}),
        ...(options.historyAge !== undefined ? { maxAgeMs: Duration.toMillis(options.historyAge) } : {})
      }
    })
    // WebSocket peers: the same sessions and codec; each message one frame, as large as a TCP one.
    const messages = Frame.messages({ maxFrameBytes: options.maxFrameBytes })
    return {
      ...running(server),
      roomActivity: server.roomActivity,
      acceptWebSocket: (socket, remote) => server.accept(socket, { remote, framing: messages })
    }
  })
