/**
 * The live dashboard's data: a {@link Sampler} reads Tether's Effect
 * `Metric`s every interval (1 s) into a bounded ring of samples (300: the
 * last five minutes), turning counters into per-second rates or per-interval
 * increases; {@link router} serves the page (`/dashboard`), its script and
 * the samples as JSON (`/dashboard/samples.json`).
 *
 * Adding a plotted figure is one line in {@link defaultSeries} (and a plot
 * naming its key in the page script). The JSON keeps a place for per-room
 * and per-node rows (`rooms`, `nodes`), empty until rooms and cluster mode
 * fill them.
 *
 * @since 0.2.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Page from "./internal/dashboardPage.js"
import * as WebAsset from "./internal/webAsset.js"

/**
 * One plotted figure: `gauge` is the value at each sample, `rate` a counter's
 * increase per second over the interval, `increase` its increase over the
 * interval. Labelled series of a metric (`reason="..."`) are summed.
 *
 * @since 0.2.0
 * @category models
 */
export interface Series {
  readonly key: string
  readonly metric: string
  readonly kind: "gauge" | "rate" | "increase"
}

/**
 * The figures sampled by default.
 *
 * @since 0.2.0
 * @category defaults
 */
export const defaultSeries: ReadonlyArray<Series> = [
  { key: "connections", metric: "tether_connections_active", kind: "gauge" },
  { key: "framesIn", metric: "tether_frames_received_total", kind: "rate" },
  { key: "framesOut", metric: "tether_frames_sent_total", kind: "rate" },
  { key: "bytesIn", metric: "tether_bytes_received_total", kind: "rate" },
  { key: "bytesOut", metric: "tether_bytes_sent_total", kind: "rate" },
  { key: "heartbeatTimeouts", metric: "tether_heartbeat_timeouts_total", kind: "increase" },
  { key: "kicks", metric: "tether_kicks_total", kind: "increase" },
  { key: "refused", metric: "tether_connections_refused_total", kind: "increase" },
  { key: "loginFailures", metric: "tether_login_failures_total", kind: "increase" }
]

/**
 * The samples, oldest first, as columns: `at[i]` (epoch ms) is when
 * `values[key][i]` was taken.
 *
 * @since 0.2.0
 * @category models
 */
export interface Samples {
  readonly intervalMs: number
  readonly capacity: number
  readonly at: ReadonlyArray<number>
  readonly values: Readonly<Record<string, ReadonlyArray<number>>>
  /** Per-room activity: filled once rooms exist. */
  readonly rooms: ReadonlyArray<{ readonly room: string; readonly members: number; readonly messagesPerSecond: number }>
  /** Per-node rows: filled in cluster mode. */
  readonly nodes: ReadonlyArray<{ readonly node: string; readonly state: string; readonly connections: number }>
}

/**
 * @since 0.2.0
 * @category services
 */
export class Sampler extends Context.Tag("@tether/node/Dashboard/Sampler")<Sampler, {
  /** The samples kept, oldest first. */
  readonly samples: () => Samples
}>() {}

/**
 * @since 0.2.0
 * @category models
 */
export interface SamplerOptions {
  /** Default 1 s. */
  readonly interval?: Duration.DurationInput
  /** Samples kept (default 300: five minutes at 1 s). */
  readonly capacity?: number
  readonly series?: ReadonlyArray<Series>
}

const totals = (series: ReadonlyArray<Series>): Array<number> => {
  const index = new Map<string, Array<number>>()
  series.forEach((s, i) => {
    const at = index.get(s.metric)
    if (at) at.push(i)
    else index.set(s.metric, [i])
  })
  const out = series.map(() => 0)
  for (const { metricKey, metricState } of Metric.unsafeSnapshot()) {
    const slots = index.get(metricKey.name)
    if (slots === undefined) continue
    const value = MetricState.isCounterState(metricState)
      ? Number(metricState.count)
      : MetricState.isGaugeState(metricState)
      ? Number(metricState.value)
      : 0
    for (const i of slots) out[i]! += value
  }
  return out
}

/**
 * Starts sampling (scoped: the sampling fiber stops with the scope). The
 * first sample is taken one interval after start.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeSampler = (options: SamplerOptions = {}): Effect.Effect<Sampler["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const series = options.series ?? defaultSeries
    const interval = Duration.decode(options.interval ?? "1 second")
    const capacity = Math.max(1, Math.floor(options.capacity ?? 300))
    const clock = yield* Effect.clock
    const at = new Array<number>(capacity)
    const columns = series.map(() => new Array<number>(capacity))
    let next = 0
    let size = 0
    let previous = totals(series)
    let previousAt = clock.unsafeCurrentTimeMillis()

    const sample = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const current = totals(series)
      const seconds = Math.max(1e-3, (now - previousAt) / 1000)
      at[next] = now
      series.forEach((s, i) => {
        const delta = Math.max(0, current[i]! - previous[i]!)
        columns[i]![next] = s.kind === "gauge" ? current[i]! : s.kind === "rate" ? delta / seconds : delta
      })
      previous = current
      previousAt = now
      next = (next + 1) % capacity
      size = Math.min(size + 1, capacity)
    })
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(interval)).pipe(Effect.delay(interval)))

    const ordered = (column: Array<number>): Array<number> => {
      const start = (next - size + capacity) % capacity
      const out = new Array<number>(size)
      for (let i = 0; i < size; i++) out[i] = column[(start + i) % capacity]!
      return out
    }
    return Sampler.of({
      samples: () => ({
        intervalMs: Duration.toMillis(interval),
        capacity,
        at: ordered(at),
        values: Object.fromEntries(series.map((s, i) => [s.key, ordered(columns[i]!)])),
        rooms: [],
        nodes: []
      })
    })
  })

/**
 * A {@link Sampler} sampling for the layer's life.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSampler = (options: SamplerOptions = {}): Layer.Layer<Sampler> =>
  Layer.scoped(Sampler, makeSampler(options))

// Compiled by `tsc -b` from packages/node/web/dashboard.ts; found from src/ (tests) and dist/ alike.
const loadScript = WebAsset.cachedFile(new URL("../dist/web/dashboard.js", import.meta.url))

const pageHeaders = WebAsset.pageHeaders()

/**
 * `GET /dashboard` (the page), `/dashboard/dashboard.js` (its script) and
 * `/dashboard/samples.json` (the {@link Samples}).
 *
 * @since 0.2.0
 * @category routes
 */
export const router: HttpRouter.HttpRouter<never, Sampler> = HttpRouter.empty.pipe(
  HttpRouter.get("/dashboard", Effect.succeed(HttpServerResponse.html(Page.html).pipe(HttpServerResponse.setHeaders(pageHeaders)))),
  HttpRouter.get(
    "/dashboard/dashboard.js",
    Effect.map(loadScript, (body) =>
      body === undefined
        ? HttpServerResponse.text("the dashboard script is not built: run `npm run build`", { status: 503 })
        : HttpServerResponse.text(body, { contentType: "text/javascript; charset=utf-8" }).pipe(
          HttpServerResponse.setHeaders(pageHeaders)
        ))
  ),
  HttpRouter.get(
    "/dashboard/samples.json",
    Effect.map(Sampler, (sampler) =>
      HttpServerResponse.unsafeJson(sampler.samples()).pipe(HttpServerResponse.setHeader("cache-control", "no-store")))
  )
)
