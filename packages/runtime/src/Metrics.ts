/**
 * Tether's metrics, as Effect `Metric`s named the Prometheus way (a
 * `tether_` prefix, the unit in the name, `_total` on counters). The
 * per-frame ones are updated with `unsafeUpdate` from the synchronous data
 * path, once per TCP chunk or write.
 *
 * Each is declared with {@link counter} or {@link gauge}, which register it
 * in Effect's global metric registry at once: an exporter (`/metrics`) lists
 * it at 0 before it first moves. Adding a metric is one line here.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * A monotonic counter (`incremental`, so exporters type it `counter`),
 * registered at once. The name should end in `_total`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const counter = (name: string, description: string): Metric.Metric.Counter<number> => {
  const metric = Metric.counter(name, { description, incremental: true })
  metric.unsafeValue([])
  return metric
}

/**
 * A gauge, registered at once. Move it with `unsafeModify` (`unsafeUpdate`
 * sets it).
 *
 * @since 0.2.0
 * @category constructors
 */
export const gauge = (name: string, description: string): Metric.Metric.Gauge<number> => {
  const metric = Metric.gauge(name, { description })
  metric.unsafeValue([])
  return metric
}

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsActive = gauge("tether_connections_active", "Connections currently running")

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsAccepted = counter("tether_connections_accepted_total", "Connections accepted by servers")

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsRefused = counter(
  "tether_connections_refused_total",
  "Connections refused (over max connections)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const framesIn = counter("tether_frames_received_total", "Frames received")

/**
 * @since 0.1.0
 * @category metrics
 */
export const framesOut = counter("tether_frames_sent_total", "Frames sent")

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesIn = counter("tether_bytes_received_total", "Bytes received")

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesOut = counter("tether_bytes_sent_total", "Bytes sent")

/**
 * @since 0.1.0
 * @category metrics
 */
export const heartbeatTimeouts = counter("tether_heartbeat_timeouts_total", "Connections closed for heartbeat timeout")

/**
 * Sessions closed by the server, tagged with `reason`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const kicks = counter("tether_kicks_total", "Sessions closed by the server, by reason")

/**
 * Logins refused, tagged with `reason` (see {@link loginFailed}).
 *
 * @since 0.2.0
 * @category metrics
 */
export const loginFailures = counter("tether_login_failures_total", "Logins refused, by reason")

/**
 * Client side: reconnect attempts.
 *
 * @since 0.1.0
 * @category metrics
 */
export const reconnects = counter("tether_client_reconnects_total", "Client reconnect attempts")

/**
 * Client side: requests that timed out.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestTimeouts = counter("tether_client_request_timeouts_total", "Client requests that timed out")

/**
 * Why a login was refused: a fixed set of label values, whatever the peer sent.
 *
 * @since 0.2.0
 * @category models
 */
export type LoginFailure = "invalid_credentials" | "not_a_login" | "user_in_use"

const loginLabels: Record<LoginFailure, ReadonlyArray<MetricLabel.MetricLabel>> = {
  invalid_credentials: [MetricLabel.make("reason", "invalid_credentials")],
  not_a_login: [MetricLabel.make("reason", "not_a_login")],
  user_in_use: [MetricLabel.make("reason", "user_in_use")]
}

/**
 * Counts a refused login in {@link loginFailures}.
 *
 * @since 0.2.0
 * @category utils
 */
export const loginFailed = (reason: LoginFailure): void => loginFailures.unsafeUpdate(1, loginLabels[reason])

/**
 * Logins refused unchecked because their key had failed too often (see `Authenticator.throttled`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const loginsThrottled = counter("tether_logins_throttled_total", "Logins refused unchecked after too many failures")

/**
 * Incoming connections lost to an error on accept (e.g. EMFILE: out of file descriptors).
 *
 * @since 0.2.0
 * @category metrics
 */
export const acceptErrors = counter("tether_accept_errors_total", "Incoming connections lost to an error on accept")

/**
 * Messages a session sent over its rate limit (not handled; the peer told where the protocol can).
 *
 * @since 0.2.0
 * @category metrics
 */
export const rateLimited = counter("tether_rate_limited_total", "Messages refused for exceeding a session's rate limit")

/**
 * Connections refused at accept for the budget of connections not logged in (see `Server.Options.maxPending`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const admissionsRefused = counter(
  "tether_admissions_refused_total",
  "Connections refused at accept for the budget of connections not logged in"
)
