/**
 * Effect's `Metric`s in Prometheus text format, the Effect way:
 * `@effect/opentelemetry`'s metric producer reads Effect's global metric
 * registry, and the OpenTelemetry Prometheus exporter (a `MetricReader`,
 * with its own HTTP server never started) serializes what it collects.
 * {@link router} serves that on our HTTP server's `GET /metrics`.
 *
 * Every Effect `Metric` of the process appears, Tether's own
 * (`@tether/runtime/Metrics`) and any other: adding one is declaring it.
 *
 * @since 0.2.0
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/**
 * The content type of Prometheus' text exposition format.
 *
 * @since 0.2.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * @since 0.2.0
 * @category services
 */
export class Prometheus extends Context.Tag("@tether/node/Prometheus")<Prometheus, {
  /** Every metric now, in Prometheus text format. */
  readonly scrape: Effect.Effect<string>
}>() {}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** `service.name` of the `target_info` series (default "tether"). */
  readonly serviceName?: string
  readonly serviceVersion?: string
}

/**
 * Registers a metric producer over Effect's metrics with a Prometheus
 * exporter (scoped: unregistered when the scope closes).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Prometheus["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const exporter = new PrometheusExporter({ preventServerStart: true })
    const producer = yield* OtelMetrics.makeProducer.pipe(
      Effect.provide(OtelResource.layer({
        serviceName: options.serviceName ?? "tether",
        ...(options.serviceVersion !== undefined ? { serviceVersion: options.serviceVersion } : {})
      }))
    )
    yield* OtelMetrics.registerProducer(producer, () => exporter)
    // As the exporter's own serializer, less the otel_scope_name label on every series.
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)
    const scrape = Effect.promise(() => exporter.collect()).pipe(
      Effect.tap(({ errors }) =>
        errors.length === 0 ? Effect.void : Effect.logWarning("metrics collection errors", errors.map(String))
      ),
      Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
    )
    return Prometheus.of({ scrape })
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Prometheus> => Layer.scoped(Prometheus, make(options))

/**
 * `GET /metrics`: the {@link Prometheus} scrape.
 *
 * @since 0.2.0
 * @category routes
 */
export const router: HttpRouter.HttpRouter<never, Prometheus> = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.flatMap(Prometheus, (prometheus) => prometheus.scrape).pipe(
      Effect.map((body) => HttpServerResponse.text(body, { contentType }))
    )
  )
)
