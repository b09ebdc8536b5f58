/** @internal */
import type * as History from "../History.js"

/**
 * A line as the JSON codec writes it, without a Schema pass: its fields were
 * validated when the `Say` was decoded, and a render runs twice per line on
 * Redis. `seq` (older wire field) stays 0: the position is in `offset`,
 * written verbatim, never derived (History.publish). ChatServer checks once
 * at start that this matches the codec.
 *
 * @internal
 */
export const saidText = (from: string, text: string, room: string, position: History.Position, at: number): string =>
  JSON.stringify({ _tag: "Said", from, text, at, seq: 0, room, epoch: position.epoch, offset: position.offset })

/**
 * A `Say`'s idempotency key for `History.publish`: a line resent to another
 * node after a failover (its first node published it, then died before the
 * `Ack`) is recognised by the History (Redis) where one node's `Dedupe`
 * cannot. The text's fingerprint (two 32-bit hashes) keeps a reused id with
 * another line apart.
 *
 * @internal
 */
export const repeatKey = (user: string, id: number, text: string): string => {
  let a = 0x811c9dc5
  let b = 0x01000193
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
  }
  return `${user}:${id}:${(a >>> 0).toString(16)}${(b >>> 0).toString(16)}`
}
