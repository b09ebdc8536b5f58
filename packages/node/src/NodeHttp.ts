/**
 * Tether's HTTP side on Node: an `@effect/platform` `HttpRouter` served by
 * `@effect/platform-node`'s `NodeHttpServer` (scoped: it stops listening
 * when the scope closes). {@link operatorRouter} is what operators use:
 * `/metrics` (Prometheus), `/healthz` and the live `/dashboard`. Further
 * routes (the web chat page `/`, the WebSocket `/ws`) are other routers
 * concatenated to it:
 *
 * ```ts
 * const http = yield* NodeHttp.serve(NodeHttp.operatorRouter, { host: "127.0.0.1", port: 7380 })
 * // later: NodeHttp.serve(HttpRouter.concat(NodeHttp.operatorRouter, WebChat.router), options)
 * ```
 *
 * @since 0.2.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Health from "@tether/runtime/Health"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { Duplex } from "node:stream"
import * as Dashboard from "./Dashboard.js"
import type * as NodeWebSocket from "./NodeWebSocket.js"
import * as Prometheus from "./Prometheus.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0: a free port (read it from the returned address). */
  readonly port?: number
  /** Time a client has to send a request's headers (default 10 s). */
  readonly headersTimeout?: Duration.DurationInput
  /** Time a client has to send a whole request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
  /**
   * WebSocket endpoints (`NodeWebSocket.upgrade`): upgrade requests to their
   * paths go to them; any other upgrade request goes to the router as usual.
   */
  readonly webSockets?: ReadonlyArray<NodeWebSocket.Upgrade>
}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultHeadersTimeout: Duration.DurationInput = "10 seconds"

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaultRequestTimeout: Duration.DurationInput = "30 seconds"

/**
 * Where the HTTP server listens.
 *
 * @since 0.2.0
 * @category models
 */
export interface Address {
  readonly hostname: string
  readonly port: number
  /** `http://host:port` */
  readonly url: string
}

/**
 * Serves `router` until the scope closes. Closing stops listening, closes
 * idle keep-alive connections and waits for requests in flight.
 *
 * @since 0.2.0
 * @category constructors
 */
export const serve = <E, R>(
  router: HttpRouter.HttpRouter<E, R>,
  options: Options = {}
): Effect.Effect<
  Address,
  HttpServerError.ServeError,
  Scope.Scope | R
> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    let nodeServer: Http.Server | undefined
    const server = yield* NodeHttpServer.make(
      () =>
        nodeServer = Http.createServer({
          // A slow or silent client cannot hold a socket for Node's defaults (60 s / 300 s).
          headersTimeout: Duration.toMillis(options.headersTimeout ?? defaultHeadersTimeout),
          requestTimeout: Duration.toMillis(options.requestTimeout ?? defaultRequestTimeout),
          // How often Node enforces those two (default 30 s).
          connectionsCheckingInterval: 1000
        }),
      { host, port: options.port ?? 0 }
    )
    if (nodeServer !== undefined) yield* closeSilentSockets(nodeServer)
    const before = nodeServer?.listeners("upgrade") ?? []
    yield* HttpServer.serveEffect(router).pipe(Effect.provideService(HttpServer.HttpServer, server))
    const webSockets = options.webSockets ?? []
    if (webSockets.length > 0 && nodeServer !== undefined) {
      const platform = nodeServer.listeners("upgrade").filter((l) => !before.includes(l))
      yield* routeUpgrades(nodeServer, platform as Array<UpgradeListener>, webSockets)
    }
    const address = server.address as HttpServer.TcpAddress
    const hostname = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    return { hostname: address.hostname, port: address.port, url: `http://${hostname}:${address.port}` }
  })

/**
 * On close, destroys the sockets that never sent a request (a browser opens
 * spare connections ahead of need): Node's `close` ends idle keep-alive
 * connections but waits for these, and its request timeouts never start for
 * them, so one such socket kept the server from closing. Runs before the
 * platform's `close` (added after it).
 */
const closeSilentSockets = (nodeServer: Http.Server) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const silent = new Set<Duplex>()
      const onConnection = (socket: Duplex) => {
        silent.add(socket)
        socket.once("close", () => silent.delete(socket))
      }
      const onRequest = (request: Http.IncomingMessage) => silent.delete(request.socket)
      nodeServer.on("connection", onConnection)
      nodeServer.on("request", onRequest)
      nodeServer.on("upgrade", onRequest)
      return { silent, onConnection, onRequest }
    }),
    ({ onConnection, onRequest, silent }) =>
      Effect.sync(() => {
        nodeServer.off("connection", onConnection)
        nodeServer.off("request", onRequest)
        nodeServer.off("upgrade", onRequest)
        for (const socket of silent) socket.destroy()
      })
  )

type UpgradeListener = (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => void

/**
 * Puts `webSockets` in front of the platform's upgrade listener: a request
 * to one of their paths is theirs, any other goes on to the platform (and
 * its router). Undone, and the endpoints closed, when the scope closes.
 */
const routeUpgrades = (
  nodeServer: Http.Server,
  platform: ReadonlyArray<UpgradeListener>,
  webSockets: ReadonlyArray<NodeWebSocket.Upgrade>
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const byPath = new Map(webSockets.map((w) => [w.path, w]))
      const listener = (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => {
        const url = request.url ?? "/"
        const query = url.indexOf("?")
        const endpoint = byPath.get(query === -1 ? url : url.slice(0, query))
        if (endpoint !== undefined) return endpoint.handle(request, socket, head)
        for (const l of platform) l.call(nodeServer, request, socket, head)
      }
      for (const l of platform) nodeServer.off("upgrade", l)
      nodeServer.on("upgrade", listener)
      return listener
    }),
    (listener) =>
      Effect.sync(() => {
        nodeServer.off("upgrade", listener)
        for (const w of webSockets) w.close()
      })
  )

/**
 * `GET /healthz`: the {@link Health.Report} as JSON; status 200 when ready,
 * 503 when draining or not ready.
 *
 * @since 0.2.0
 * @category routes
 */
export const healthRouter: HttpRouter.HttpRouter<never, Health.Health> = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/healthz",
    Effect.flatMap(Health.Health, (health) => health.report).pipe(
      Effect.map((report) =>
        HttpServerResponse.unsafeJson(report, { status: report.state === "ready" ? 200 : 503 }).pipe(
          HttpServerResponse.setHeader("cache-control", "no-store")
        )
      )
    )
  )
)

/**
 * The operators' routes: `/metrics`, `/healthz`, `/dashboard` (and its
 * script and samples).
 *
 * @since 0.2.0
 * @category routes
 */
export const operatorRouter: HttpRouter.HttpRouter<never, Prometheus.Prometheus | Health.Health | Dashboard.Sampler> =
  HttpRouter.concatAll(Prometheus.router, healthRouter, Dashboard.router)

/**
 * What {@link operatorRouter} needs besides {@link Health.Health} (which the
 * app shares with its server's lifecycle): the Prometheus exporter and the
 * dashboard's sampler.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerOperator = (
  options: { readonly prometheus?: Prometheus.Options; readonly sampler?: Dashboard.SamplerOptions } = {}
): Layer.Layer<Prometheus.Prometheus | Dashboard.Sampler> =>
  Layer.merge(Prometheus.layer(options.prometheus), Dashboard.layerSampler(options.sampler))
