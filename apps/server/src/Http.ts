/**
 * The server's HTTP side (`--http-port`): the operators' routes (`/metrics`,
 * `/healthz`, `/dashboard`) on `@effect/platform-node`'s HTTP server, their
 * services built into the caller's scope; in chat mode also the web chat page
 * (`/`) and its WebSocket endpoint (`/ws`), whose sockets become sessions of
 * the chat server beside its TCP ones. Imported only when `--http-port` is
 * given: the HTTP and OpenTelemetry stack costs ~20 MiB of RSS.
 */
import type * as Socket from "@effect/platform/Socket"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as Dashboard from "@tether/node/Dashboard"
import * as NodeHttp from "@tether/node/NodeHttp"
import * as NodeWebSocket from "@tether/node/NodeWebSocket"
import * as WebChat from "@tether/node/WebChat"
import type * as Health from "@tether/runtime/Health"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

/** The chat server's WebSocket entry, once it is up (undefined before: `/ws` answers 503). */
export interface WebSocketOptions {
  readonly accept: () => ((socket: Socket.Socket, remote: string) => Effect.Effect<void>) | undefined
  /** Largest WebSocket message, in bytes (the chat server's frame limit). */
  readonly maxPayload: number
}

/** Serves the operators' routes (and, with `webSocket`, the web chat) until the scope closes. */
export const start = (
  options: NodeHttp.Options & {
    readonly sampler?: Dashboard.SamplerOptions
    readonly webSocket?: WebSocketOptions | undefined
  }
): Effect.Effect<NodeHttp.Address, HttpServerError.ServeError, Scope.Scope | Health.Health> =>
  Effect.gen(function*() {
    // Built into this scope, not around `serve` (which returns once listening).
    const services = yield* Layer.build(NodeHttp.layerOperator({
      prometheus: { serviceName: "tether-server" },
      ...(options.sampler !== undefined ? { sampler: options.sampler } : {})
    }))
    const webSocket = options.webSocket
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const webSockets = webSocket === undefined
      ? []
      : [NodeWebSocket.upgrade("/ws", webSocket.accept, runFork, { maxPayload: webSocket.maxPayload })]
    const router = webSocket === undefined ? NodeHttp.operatorRouter : HttpRouter.concat(NodeHttp.operatorRouter, WebChat.router)
    return yield* NodeHttp.serve(router, {
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      webSockets
    }).pipe(Effect.provide(services))
  })
