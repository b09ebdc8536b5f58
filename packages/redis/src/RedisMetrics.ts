/**
 * Metrics of the Redis service and of the cluster layers, as Effect `Metric`s
 * (`tether_redis_...`). Updated with `unsafeUpdate` from callbacks.
 *
 * @since 0.2.0
 */
import * as Metric from "effect/Metric"

/**
 * Round trips to Redis (one per command or script), tagged `connection`
 * (`command`, `blocking`, `pubsub`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const roundTrips = Metric.counter("tether_redis_round_trips_total", {
  description: "Redis commands sent, one round trip each"
})

/**
 * Failed commands, tagged `reason` (`Unavailable`, `Timeout`, `ErrorReply`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const errors = Metric.counter("tether_redis_errors_total", { description: "Redis commands that failed" })

/**
 * Connection losses seen by the client, tagged `connection`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const disconnects = Metric.counter("tether_redis_disconnects_total", {
  description: "Redis connections lost (each followed by reconnect attempts)"
})

/**
 * Entries a subscriber read back from a room's stream to fill a gap in
 * pub/sub delivery (after a reconnect or an offset jump).
 *
 * @since 0.2.0
 * @category metrics
 */
export const gapFilled = Metric.counter("tether_redis_history_gap_filled_total", {
  description: "History entries delivered from the stream to fill a pub/sub gap"
})

/**
 * Pub/sub messages dropped as duplicates (offset already delivered).
 *
 * @since 0.2.0
 * @category metrics
 */
export const duplicates = Metric.counter("tether_redis_history_duplicates_total", {
  description: "Pub/sub messages dropped because their offset was already delivered"
})

/**
 * Entries a subscriber could not deliver because they were trimmed from the
 * stream before it could read them back, or lost with Redis (epoch change).
 *
 * @since 0.2.0
 * @category metrics
 */
export const unrecoverable = Metric.counter("tether_redis_history_unrecoverable_total", {
  description: "Gaps a subscriber could not fill (trimmed entries, or a new epoch)"
})

/**
 * Members announced as lost with a dead node.
 *
 * @since 0.2.0
 * @category metrics
 */
export const membersLost = Metric.counter("tether_redis_presence_lost_total", {
  description: "Room members announced as lost with their node"
})
