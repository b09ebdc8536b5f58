/**
 * The server's HTTP side (`--http-port`): the operators' routes (`/metrics`,
 * `/healthz`, `/dashboard`) on `@effect/platform-node`'s HTTP server, their
 * services built into the caller's scope. Imported only when `--http-port`
 * is given: the HTTP and OpenTelemetry stack costs ~20 MiB of RSS.
 */
import type * as Dashboard from "@tether/node/Dashboard"
import * as NodeHttp from "@tether/node/NodeHttp"
import type * as Health from "@tether/runtime/Health"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/** Serves the operators' routes until the scope closes. */
export const start = (
  options: NodeHttp.Options & { readonly sampler?: Dashboard.SamplerOptions }
): Effect.Effect<NodeHttp.Address, HttpServerError.ServeError, Scope.Scope | Health.Health> =>
  Effect.gen(function*() {
    // Built into this scope, not around `serve` (which returns once listening).
    const services = yield* Layer.build(NodeHttp.layerOperator({
      prometheus: { serviceName: "tether-server" },
      ...(options.sampler !== undefined ? { sampler: options.sampler } : {})
    }))
    return yield* NodeHttp.serve(NodeHttp.operatorRouter, {
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {})
    }).pipe(Effect.provide(services))
  })
