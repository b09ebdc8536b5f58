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
 * Publishes a batch of lines, in order, in one call. KEYS: meta, stream, then
 * the lines' repeat keys. ARGV: channel, newEpoch, maxEntries, maxBytes,
 * maxAgeMs, metaTtlMs, the marks of the epoch, the offset and the time
 * (alphanumeric), then per line: its repeat key's index in KEYS (0: none)
 * and its text, where each mark is replaced by its value. A line under a
 * repeat key seen in the last 10 minutes, in the current epoch, gets that
 * publish's {epoch, offset, at} and is not published again. The new lines
 * go out in ONE pub/sub message: `*<epoch>:<count>:` then per line
 * `<offset>:<at>:<bytes>:<payload>`. Returns {epoch, offset, at} per line. Each line's XADD runs before its offset is
 * stored, so a failed XADD consumes nothing, and the lines before it stay
 * published (their repeat keys set): a retry of the batch publishes each once.
 *
 * @internal
 */
export const publish = Script.make("publish", `${ensureEpoch}
local meta, stream = KEYS[1], KEYS[2]
local channel = ARGV[1]
local maxEntries, maxBytes, maxAge, metaTtl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local epoch = ensureEpoch(meta, stream, ARGV[2], metaTtl)
local offset = tonumber(redis.call('HGET', meta, 'o'))
local at = nowMs()
local now = tonumber(at)
if redis.call('EXISTS', stream) == 0 then redis.call('HSET', meta, 'b', 0) end
local markEpoch, markOffset, markAt = ARGV[7], ARGV[8], ARGV[9]
local results = {}
local message = {}
local bytes = 0
for i = 10, #ARGV, 2 do
  local keyIndex = tonumber(ARGV[i])
  local repeatKey = nil
  if keyIndex > 0 then repeatKey = KEYS[keyIndex] end
  local seen = nil
  if repeatKey then
    local previous = redis.call('GET', repeatKey)
    if previous then
      local e, o, a = string.match(previous, '^(.*):(%d+):(%d+)$')
      if e and e == epoch then seen = {e, tonumber(o), a} end
    end
  end
  if seen then
    results[#results + 1] = seen
  else
    offset = offset + 1
    local payload = string.gsub(ARGV[i + 1], markEpoch, epoch)
    payload = string.gsub(payload, markOffset, tostring(offset))
    payload = string.gsub(payload, markAt, at)
    redis.call('XADD', stream, offset .. '-0', 'a', at, 'p', payload)
    redis.call('HSET', meta, 'o', offset)
    bytes = redis.call('HINCRBY', meta, 'b', #payload)
    message[#message + 1] = offset .. ':' .. at .. ':' .. #payload .. ':' .. payload
    if repeatKey then redis.call('SET', repeatKey, epoch .. ':' .. offset .. ':' .. at, 'PX', 600000) end
    results[#results + 1] = {epoch, offset, at}
  end
end
if #message > 0 then redis.call('PUBLISH', channel, '*' .. epoch .. ':' .. #message .. ':' .. table.concat(message)) end
local len = redis.call('XLEN', stream)
if bytes == 0 then bytes = tonumber(redis.call('HGET', meta, 'b')) end
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
return results
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
