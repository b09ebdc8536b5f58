/**
 * The live dashboard's data: a {@link Sampler} reads Tether's Effect
 * `Metric`s every interval (1 s) into a bounded ring of samples (300: the
 * last five minutes), turning counters into per-second rates or per-interval
 * increases; {@link router} serves the page (`/dashboard`), its script and
 * the samples as JSON (`/dashboard/samples.json`).
 *
 * Adding a plotted figure is one line in {@link defaultSeries} (and a plot
 * naming its key in the page script). Beside the series, each sample reads
 * the busiest rooms (`rooms`: at most `roomLimit` rows, from the chat
 * server's per-room counters) and, in cluster mode, every node's published
 * summary (`nodes`: at most what the reader returns), so the JSON stays
 * bounded however many rooms and nodes there are.
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
import { RoomSeries } from "./internal/roomSeries.js"
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
  /** The busiest rooms at the last sample (at most `roomLimit`), busiest first. */
  readonly rooms: ReadonlyArray<RoomRow>
  /** How many rooms have members on this node. */
  readonly roomCount: number
  /**
   * The rates of the first (at most 5) of `rooms` over the kept samples,
   * aligned with `at`; null where the room was not among the busiest.
   */
  readonly roomSeries: Readonly<Record<string, ReadonlyArray<number | null>>>
  /** Each node of the cluster, as last published (cluster mode; empty otherwise). */
  readonly nodes: ReadonlyArray<NodeRow>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface RoomRow {
  readonly room: string
  readonly members: number
  readonly messagesPerSecond: number
}

/**
 * A node's own summary, as it published it; `lastSeenAgoMs` is how long ago
 * (by this node's clock) it was published.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeRow {
  readonly node: string
  readonly connections: number
  readonly messagesInPerSecond: number
  readonly messagesOutPerSecond: number
  readonly lastSeenAgoMs: number
}

/**
 * What the sampler reads the rooms from: the `limit` busiest rooms by lines
 * since the previous call, and the number of rooms (`ChatServer.roomActivity`);
 * undefined while there is no chat server (yet).
 *
 * @since 0.2.0
 * @category models
 */
export type RoomSource = (limit: number) =>
  | { readonly rooms: number; readonly busiest: ReadonlyArray<{ readonly room: string; readonly members: number; readonly lines: number }> }
  | undefined

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
  /** Per-room activity (chat mode). */
  readonly rooms?: RoomSource
  /** Rooms listed (default 10, at most 100). */
  readonly roomLimit?: number
  /** Every node's summary (cluster mode), read once per sample; a failure or a reply later than the interval shows no nodes. */
  readonly nodes?: Effect.Effect<ReadonlyArray<NodeRow>, unknown>
}

/** Rooms whose rates over time are in the samples (and plotted). */
const plottedRooms = 5

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
    const roomLimit = Math.min(100, Math.max(1, Math.floor(options.roomLimit ?? 10)))
    let rooms: ReadonlyArray<RoomRow> = []
    let roomCount = 0
    const roomSeries = new RoomSeries(capacity, 2 * roomLimit)
    let nodes: ReadonlyArray<NodeRow> = []
    options.rooms?.(roomLimit) // starts the first window

    const sample = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const current = totals(series)
      const seconds = Math.max(1e-3, (now - previousAt) / 1000)
      at[next] = now
      series.forEach((s, i) => {
        const delta = Math.max(0, current[i]! - previous[i]!)
        columns[i]![next] = s.kind === "gauge" ? current[i]! : s.kind === "rate" ? delta / seconds : delta
      })
      const look = options.rooms?.(roomLimit)
      rooms = look === undefined ? [] : look.busiest.map((r) => ({
        room: r.room,
        members: r.members,
        messagesPerSecond: Math.round((r.lines / seconds) * 100) / 100
      }))
      roomCount = look?.rooms ?? 0
      roomSeries.record(next, rooms)
      previous = current
      previousAt = now
      next = (next + 1) % capacity
      size = Math.min(size + 1, capacity)
    })
    const readNodes = options.nodes === undefined ? Effect.void : options.nodes.pipe(
      Effect.timeout(interval),
      Effect.match({ onFailure: () => (nodes = []), onSuccess: (rows) => (nodes = rows) })
    )
    yield* Effect.forkScoped(
      Effect.repeat(Effect.zipRight(sample, readNodes), Schedule.spaced(interval)).pipe(Effect.delay(interval))
    )

    const ordered = <A>(column: ReadonlyArray<A>): Array<A> => {
      const start = (next - size + capacity) % capacity
      const out = new Array<A>(size)
      for (let i = 0; i < size; i++) out[i] = column[(start + i) % capacity]!
      return out
    }
    return Sampler.of({
      samples: () => ({
        intervalMs: Duration.toMillis(interval),
        capacity,
        at: ordered(at),
        values: Object.fromEntries(series.map((s, i) => [s.key, ordered(columns[i]!)])),
        rooms,
        roomCount,
        roomSeries: Object.fromEntries(
          rooms.slice(0, plottedRooms).flatMap((r) => {
            const column = roomSeries.column(r.room)
            return column === undefined ? [] : [[r.room, ordered(column)]]
          })
        ),
        nodes
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
