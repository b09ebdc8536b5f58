import { assert, describe, it } from "@effect/vitest"
import * as NodeHttp from "@tether/node/NodeHttp"
import * as Prometheus from "@tether/node/Prometheus"
import * as Health from "@tether/runtime/Health"
import * as Metrics from "@tether/runtime/Metrics"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as net from "node:net"
import { parse } from "@tether/testing/Prometheus"

/** The operators' routes on 127.0.0.1 port 0, in a scope of their own. */
const start = (scope: Scope.Scope, options: NodeHttp.Options = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.buildWithScope(Layer.merge(NodeHttp.layerOperator(), Health.layer()), scope)
    const address = yield* NodeHttp.serve(NodeHttp.operatorRouter, { port: 0, ...options }).pipe(
      Effect.provide(context),
      Scope.extend(scope)
    )
    return { url: address.url, health: Context.get(context, Health.Health), address }
  })

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

describe("NodeHttp.serve with the operators' routes", () => {
  it.scopedLive("/healthz: 503 not_ready, 200 ready, 503 when a check fails, 503 draining", () =>
    Effect.gen(function*() {
      const { health, url, address } = yield* start(yield* Effect.scope)
      assert.strictEqual(address.hostname, "127.0.0.1")
      assert.isAbove(address.port, 0)
      const starting = yield* get(`${url}/healthz`)
      assert.strictEqual(starting.status, 503)
      assert.deepStrictEqual(JSON.parse(starting.body), { state: "not_ready", checks: [] })
      yield* health.markReady
      const ready = yield* get(`${url}/healthz`)
      assert.strictEqual(ready.status, 200)
      assert.match(ready.headers.get("content-type") ?? "", /application\/json/)
      assert.deepStrictEqual(JSON.parse(ready.body), { state: "ready", checks: [] })
      const redis = yield* Scope.make()
      yield* health.register("redis", Effect.fail("unreachable")).pipe(Scope.extend(redis))
      const down = yield* get(`${url}/healthz`)
      assert.strictEqual(down.status, 503)
      assert.deepStrictEqual(JSON.parse(down.body), {
        state: "not_ready",
        checks: [{ name: "redis", ok: false, detail: "unreachable" }]
      })
      yield* Scope.close(redis, Exit.void)
      assert.strictEqual((yield* get(`${url}/healthz`)).status, 200)
      yield* health.markDraining
      const draining = yield* get(`${url}/healthz`)
      assert.strictEqual(draining.status, 503)
      assert.strictEqual(JSON.parse(draining.body).state, "draining")
    }))

  it.scopedLive("/metrics: Prometheus text every metric declared, typed, at 0 before it moves", () =>
    Effect.gen(function*() {
      const { url } = yield* start(yield* Effect.scope)
      // Declaring a metric is all it takes to export it.
      const things = Metrics.counter("tether_test_things_total", "Things, for this test")
      const scrape = yield* get(`${url}/metrics`)
      assert.strictEqual(scrape.status, 200)
      assert.strictEqual(scrape.headers.get("content-type"), Prometheus.contentType)
      const families = new Map(parse(scrape.body).map((f) => [f.name, f]))
      for (
        const name of [
          "tether_connections_accepted_total",
          "tether_connections_refused_total",
          "tether_frames_received_total",
          "tether_frames_sent_total",
          "tether_bytes_received_total",
          "tether_bytes_sent_total",
          "tether_heartbeat_timeouts_total",
          "tether_kicks_total",
          "tether_login_failures_total",
          "tether_client_reconnects_total"
        ]
      ) {
        assert.strictEqual(families.get(name)?.type, "COUNTER", name)
      }
      assert.strictEqual(families.get("tether_connections_active")?.type, "GAUGE")
      assert.strictEqual(families.get("tether_connections_active")?.help, "Connections currently running")
      assert.deepStrictEqual(families.get("tether_test_things_total")?.metrics, [{ value: "0" }])
      things.unsafeUpdate(3, [])
      const after = new Map(parse((yield* get(`${url}/metrics`)).body).map((f) => [f.name, f]))
      assert.deepStrictEqual(after.get("tether_test_things_total")?.metrics, [{ value: "3" }])
      assert.strictEqual(after.get("target_info")?.metrics[0]?.labels?.service_name, "tether")
    }))

  it.scopedLive("/dashboard: the page (with a CSP), its script, the samples; anything else 404", () =>
    Effect.gen(function*() {
      const { url } = yield* start(yield* Effect.scope)
      const page = yield* get(`${url}/dashboard`)
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /text\/html/)
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/)
      assert.match(page.body, /<script type="module" src="\/dashboard\/dashboard.js">/)
      const script = yield* get(`${url}/dashboard/dashboard.js`)
      assert.strictEqual(script.status, 200, script.body)
      assert.match(script.headers.get("content-type") ?? "", /text\/javascript/)
      assert.match(script.body, /samples\.json/)
      assert.notMatch(script.body, /innerHTML/)
      const samples = yield* get(`${url}/dashboard/samples.json`)
      assert.strictEqual(samples.status, 200)
      assert.deepStrictEqual(Object.keys(JSON.parse(samples.body)).sort(), ["at", "capacity", "intervalMs", "nodes", "roomCount", "roomSeries", "rooms", "values"])
      assert.strictEqual((yield* get(`${url}/nope`)).status, 404)
    }))

  it.scopedLive("a client that never finishes its headers is answered 408 and closed (headersTimeout)", () =>
    Effect.gen(function*() {
      const { address } = yield* start(yield* Effect.scope, { headersTimeout: "300 millis", requestTimeout: "300 millis" })
      const outcome = yield* Effect.promise(() =>
        new Promise<{ ms: number; received: string }>((resolve) => {
          const socket = net.connect({ host: "127.0.0.1", port: address.port })
          const opened = Date.now()
          let received = ""
          socket.on("data", (chunk) => (received += chunk.toString("latin1")))
          socket.on("error", () => {})
          socket.on("close", () => resolve({ ms: Date.now() - opened, received }))
          socket.on("connect", () => socket.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "))
          setTimeout(() => socket.destroy(), 5000)
        })
      )
      assert.isBelow(outcome.ms, 3000)
      assert.match(outcome.received, /^HTTP\/1\.1 408/)
    }))

  it.live("stops listening when its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { url, health } = yield* start(scope)
      yield* health.markReady
      assert.strictEqual((yield* get(`${url}/healthz`)).status, 200)
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.tryPromise(() => fetch(`${url}/healthz`)).pipe(Effect.flip)
      assert.match(String(after.error), /fetch failed/)
    }))
})
