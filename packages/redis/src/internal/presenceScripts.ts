/** @internal */
import * as Script from "../Script.js"

/**
 * KEYS: the name's key. ARGV: session, ttlMs. Takes a free name, or refreshes
 * the TTL of one the session already holds: 1; held by another session: 0.
 * Claim and refresh are the same script, so a refresh after Redis lost the key
 * (restart, expiry during an outage) takes the name back if it is still free.
 *
 * @internal
 */
export const claim = Script.make("claim", `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

/**
 * KEYS: a key. ARGV: value. Deletes the key only while it holds the value.
 *
 * @internal
 */
export const deleteIf = Script.make("deleteIf", `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

/**
 * KEYS: a room's members hash. ARGV: user, node. Removes the member only
 * while the node holds it: 1 exactly once per (room, user, node) cluster-wide.
 *
 * @internal
 */
export const leaveIf = Script.make("leaveIf", `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)
