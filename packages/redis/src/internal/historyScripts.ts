/** @internal */
import * as Script from "../Script.js"

// Both scripts touch only the room's two keys (`{room}` hash tag: one slot).
// The room's meta hash holds e (epoch), o (last offset), b (payload bytes kept).
// Stream entries have id `<offset>-0` and fields a (accepted at, Unix ms, Redis
// clock) and p (payload). An entry is trimmed once past maxEntries, maxBytes or
// maxAge (oldest first, the newest always kept); the stream expires after
// maxAge without a publish; the meta after metaTtl (0: never).

const ensureEpoch = `
local function ensureEpoch(meta, stream, newEpoch, metaTtl)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = newEpoch
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 'o', 0, 'b', 0)
    if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  end
  return epoch
end
local function nowMs()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
`

/**
 * KEYS: meta, stream, and optionally a repeat key (a publish under a key seen
 * in the last 10 minutes, in the current epoch, returns that publish's
 * {epoch, offset, at} and publishes nothing). ARGV: channel, newEpoch, maxEntries, maxBytes, maxAgeMs,
 * metaTtlMs, then the payload template: part, kind, part, ..., part where kind
 * is e (epoch), o (offset) or t (accepted at). Returns {epoch, offset, at}.
 * The XADD runs before the offset is stored, so a failed XADD consumes nothing.
 *
 * @internal
 */
export const publish = Script.make("publish", `${ensureEpoch}
local meta, stream, repeatKey = KEYS[1], KEYS[2], KEYS[3]
local maxEntries, maxBytes, maxAge, metaTtl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if repeatKey then
  local seen = redis.call('GET', repeatKey)
  if seen then
    local e, o, a = string.match(seen, '^(.*):(%d+):(%d+)$')
    if e and e == redis.call('HGET', meta, 'e') then return {e, tonumber(o), a} end
  end
end
local epoch = ensureEpoch(meta, stream, ARGV[2], metaTtl)
local offset = tonumber(redis.call('HGET', meta, 'o')) + 1
local at = nowMs()
local now = tonumber(at)
local pieces = {}
for i = 7, #ARGV do
  local v = ARGV[i]
  if (i - 7) % 2 == 0 then pieces[#pieces + 1] = v
  elseif v == 'o' then pieces[#pieces + 1] = tostring(offset)
  elseif v == 'e' then pieces[#pieces + 1] = epoch
  else pieces[#pieces + 1] = at end
end
local payload = table.concat(pieces)
if redis.call('EXISTS', stream) == 0 then redis.call('HSET', meta, 'b', 0) end
redis.call('XADD', stream, offset .. '-0', 'a', at, 'p', payload)
redis.call('HSET', meta, 'o', offset)
local bytes = redis.call('HINCRBY', meta, 'b', #payload)
local len = redis.call('XLEN', stream)
while len > 1 do
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  local fields = first[2]
  if len > maxEntries or bytes > maxBytes or tonumber(fields[2]) < now - maxAge then
    redis.call('XDEL', stream, first[1])
    bytes = redis.call('HINCRBY', meta, 'b', -#fields[4])
    len = len - 1
  else
    break
  end
end
redis.call('PEXPIRE', stream, maxAge)
if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
redis.call('PUBLISH', ARGV[1], offset .. ':' .. epoch .. ':' .. at .. ':' .. payload)
if repeatKey then redis.call('SET', repeatKey, epoch .. ':' .. offset .. ':' .. at, 'PX', 600000) end
return {epoch, offset, at}
`)

/**
 * KEYS: meta, stream. ARGV: newEpoch, fromEpoch, fromOffset, count, metaTtlMs.
 * Returns {epoch, top offset, now, entries after fromOffset (after 0 when
 * the epoch is not fromEpoch), at most count}: one consistent snapshot.
 *
 * @internal
 */
export const read = Script.make("read", `${ensureEpoch}
local meta, stream = KEYS[1], KEYS[2]
local epoch = ensureEpoch(meta, stream, ARGV[1], tonumber(ARGV[5]))
local top = tonumber(redis.call('HGET', meta, 'o'))
local from = 0
if epoch == ARGV[2] then from = tonumber(ARGV[3]) end
local count = tonumber(ARGV[4])
local entries = {}
if count > 0 and from < top then
  entries = redis.call('XRANGE', stream, (from + 1) .. '-0', '+', 'COUNT', count)
end
return {epoch, top, nowMs(), entries}
`)
