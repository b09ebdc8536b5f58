/**
 * Tether's metrics, as Effect `Metric`s. The per-frame ones are updated with
 * `unsafeUpdate` from the synchronous data path, once per TCP chunk or write.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsActive = Metric.gauge("tether_connections_active", {
  description: "Connections currently running"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsAccepted = Metric.counter("tether_connections_accepted_total", {
  description: "Connections accepted by servers"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectionsRefused = Metric.counter("tether_connections_refused_total", {
  description: "Connections refused (over max connections)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const framesIn = Metric.counter("tether_frames_in_total", { description: "Frames received" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const framesOut = Metric.counter("tether_frames_out_total", { description: "Frames sent" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesIn = Metric.counter("tether_bytes_in_total", { description: "Bytes received" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesOut = Metric.counter("tether_bytes_out_total", { description: "Bytes sent" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const heartbeatTimeouts = Metric.counter("tether_heartbeat_timeouts_total", {
  description: "Connections closed for heartbeat timeout"
})

/**
 * Connections closed by the server, tagged with `reason`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const kicks = Metric.counter("tether_kicks_total", { description: "Sessions closed by the server, by reason" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const reconnects = Metric.counter("tether_reconnects_total", { description: "Client reconnect attempts" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const requestTimeouts = Metric.counter("tether_request_timeouts_total", {
  description: "Client requests that timed out"
})

/**
 * Logins refused for wrong credentials (see `Authenticator.throttled`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const loginFailures = Metric.counter("tether_login_failures_total", {
  description: "Logins refused for wrong credentials"
})

/**
 * Logins refused unchecked because their key had failed too often.
 *
 * @since 0.1.0
 * @category metrics
 */
export const loginsThrottled = Metric.counter("tether_logins_throttled_total", {
  description: "Logins refused unchecked after too many failures"
})

/**
 * Incoming connections lost to an error on accept (e.g. EMFILE: out of file descriptors).
 *
 * @since 0.1.0
 * @category metrics
 */
export const acceptErrors = Metric.counter("tether_accept_errors_total", {
  description: "Incoming connections lost to an error on accept"
})
