/**
 * A session's token bucket for `Server.Options.rateLimit`: messages per
 * second with a burst, and input bytes per second (bursts of two seconds'
 * worth), refilled lazily from the time of each message.
 *
 * @internal
 */
import * as Metrics from "../Metrics.js"
import type * as Server from "../Server.js"
import type { Session } from "../Session.js"

/** @internal */
export interface Bucket {
  tokens: number
  byteTokens: number
  refilledAt: number
  bytesSeen: number
}

/** A full bucket at `now`. @internal */
export const bucket = (limit: Server.RateLimit<any>, now: number): Bucket => ({
  tokens: limit.burst,
  byteTokens: (limit.bytesPerSecond ?? 0) * 2,
  refilledAt: now,
  bytesSeen: 0
})

/**
 * Takes `message`'s tokens from `bucket`; false (and the peer told, when the
 * protocol has a refusal) when the session is over its rate.
 *
 * @internal
 */
export const take = <M>(limit: Server.RateLimit<M>, bucket: Bucket, session: Session<M>, message: M, now: number): boolean => {
  const elapsed = Math.max(0, now - bucket.refilledAt) / 1000
  bucket.refilledAt = now
  bucket.tokens = Math.min(limit.burst, bucket.tokens + elapsed * limit.messagesPerSecond)
  const cost = limit.cost?.(message) ?? 1
  let short = cost - bucket.tokens
  let retryAfterMs = short > 0 ? Math.ceil((short / limit.messagesPerSecond) * 1000) : 0
  const bytesPerSecond = limit.bytesPerSecond
  if (bytesPerSecond !== undefined) {
    bucket.byteTokens = Math.min(bytesPerSecond * 2, bucket.byteTokens + elapsed * bytesPerSecond)
    const bytesIn = session.connection.stats.bytesIn
    bucket.byteTokens -= bytesIn - bucket.bytesSeen
    bucket.bytesSeen = bytesIn
    if (bucket.byteTokens < 0) {
      short = Math.max(short, 1)
      retryAfterMs = Math.max(retryAfterMs, Math.ceil((-bucket.byteTokens / bytesPerSecond) * 1000))
    }
  }
  if (short <= 0) {
    bucket.tokens -= cost
    return true
  }
  Metrics.rateLimited.unsafeUpdate(1, [])
  const refusal = limit.refuse?.(message, retryAfterMs)
  if (refusal !== undefined) session.unsafeSend(refusal)
  return false
}
