/** @internal */
import * as Script from "../Script.js"

// Both scripts touch only the room's two keys (`{room}` hash tag: one slot).
// The room's meta hash holds e (epoch), o (last offset), b (payload bytes kept).
// Stream entries have id `<offset>-0` and fields a (accepted at, Unix ms, Redis
// clock) and p (payload). An entry is trimmed once past maxEntries, maxBytes or
// maxAge (oldest first, the newest always kept); the stream expires after
// maxAge without a publish; the meta after metaTtl (0: never).

const nowMs = `
local function nowMs()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
`

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
 * `<offset>:<at>:<bytes>:<payload>`. Returns {epoch, offset, at} per line. A
 * failed XADD consumes nothing: the room's state is stored as of the lines
 * before it (in the stream, their repeat keys set, not published) and the
 * call fails; a retry of the batch publishes each once. About ten commands
 * a call whatever the batch's size (HMGET, XLEN, TIME, per line XADD, one
 * PUBLISH, one XRANGE and one XTRIM MINID for the trim, HSET, PEXPIRE x2).
 *
 * @internal
 */
export const publish = Script.make("publish", `${nowMs}
local meta, stream = KEYS[1], KEYS[2]
local channel = ARGV[1]
local maxEntries, maxBytes, maxAge, metaTtl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
-- The room's state in one read; it is written back once, at the end.
local state = redis.call('HMGET', meta, 'e', 'o', 'b')
local epoch, offset, bytes = state[1], tonumber(state[2]), tonumber(state[3])
local len = 0
if not epoch then
  epoch, offset = ARGV[2], 0
  redis.call('DEL', stream)
else
  len = redis.call('XLEN', stream)
end
-- No stream (new, or expired after maxAge without a publish): nothing is kept.
if len == 0 then bytes = 0 end
local at = nowMs()
local now = tonumber(at)
local function store()
  redis.call('HSET', meta, 'e', epoch, 'o', offset, 'b', bytes)
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
end
local markEpoch, markOffset, markAt = ARGV[7], ARGV[8], ARGV[9]
local results = {}
local message = {}
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
    local payload = string.gsub(ARGV[i + 1], markEpoch, epoch)
    payload = string.gsub(payload, markOffset, tostring(offset + 1))
    payload = string.gsub(payload, markAt, at)
    local added = redis.pcall('XADD', stream, (offset + 1) .. '-0', 'a', at, 'p', payload)
    if type(added) == 'table' and added.err then
      -- The lines before this one stay (stored, their repeat keys set): a retry publishes each once.
      store()
      return added
    end
    offset = offset + 1
    len = len + 1
    bytes = bytes + #payload
    message[#message + 1] = offset .. ':' .. at .. ':' .. #payload .. ':' .. payload
    if repeatKey then redis.call('SET', repeatKey, epoch .. ':' .. offset .. ':' .. at, 'PX', 600000) end
    results[#results + 1] = {epoch, offset, at}
  end
end
if #message > 0 then redis.call('PUBLISH', channel, '*' .. epoch .. ':' .. #message .. ':' .. table.concat(message)) end
-- Trim the oldest entries past a bound (the newest always kept): read them in
-- one XRANGE (more only when many go), delete them with one XTRIM MINID.
local cutoff = now - maxAge
local drop, last, from = 0, nil, '-'
while len - drop > 1 do
  local want = math.min(math.max(len - drop - maxEntries, 0) + 1, 128)
  local batch = redis.call('XRANGE', stream, from, '+', 'COUNT', want)
  local kept = false
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    if len - drop > 1 and (len - drop > maxEntries or bytes > maxBytes or tonumber(fields[2]) < cutoff) then
      drop = drop + 1
      bytes = bytes - #fields[4]
      last = entry[1]
    else
      kept = true
      break
    end
  end
  if kept or #batch < want then break end
  from = '(' .. last
end
if last then redis.call('XTRIM', stream, 'MINID', (tonumber(string.match(last, '^(%d+)')) + 1) .. '-0') end
store()
redis.call('PEXPIRE', stream, maxAge)
return results
`)

/**
 * KEYS: meta, stream. ARGV: newEpoch, fromEpoch, fromOffset, count, metaTtlMs.
 * Returns {epoch, top offset, now, entries after fromOffset (after 0 when
 * the epoch is not fromEpoch), at most count}: one consistent snapshot.
 *
 * @internal
 */
export const read = Script.make("read", `${nowMs}${ensureEpoch}
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
