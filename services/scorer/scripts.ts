// Redis Lua scripts of the scorer, one per atomic command, named after the command and its
// number of keys. Each opens with what its KEYS, ARGV and reply are; shared pieces are Lua
// functions included at the top of the scripts that use them.

/**
 * Include: sessionContext(key, t) → clicksBefore, sessionStart, categoriesSeen for a click at
 * event time t in the session sorted set `key` (members "eventId\tcategory\titemId\tprice",
 * score = time; members written before item and price were kept end after the category).
 * The definition of services/model/session.ts: clicks with an earlier event time.
 */
const SESSION_CONTEXT = `
local function sessionContext(key, t)
  -- members and scores alternate; the session started with the earliest earlier click, or t.
  local earlier = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. t, 'WITHSCORES')
  local categories = {}
  local distinct = 0
  for i = 1, #earlier, 2 do
    local category = string.match(earlier[i], '^[^\\t]*\\t([^\\t]*)')
    if category and not categories[category] then
      categories[category] = true
      distinct = distinct + 1
    end
  end
  local start = t
  if earlier[2] then start = tonumber(earlier[2]) end
  return #earlier / 2, start, distinct
end
`;

/**
 * observeClicks-N: record a batch of clicks in their sessions and return each click's session
 * context, in order. Replays and late clicks get the same answer. One call per batch:
 * per-command overhead dominates otherwise.
 *   KEYS[i]          session sorted set of click i (scorerKeys.session; repeats allowed)
 *   ARGV[1]          idle expiry of a session, seconds
 *   ARGV[2]          most clicks kept per session (oldest dropped beyond it)
 *   ARGV[3 + 3(i-1)] eventId of click i; then its event time (ms); then the rest of its member
 *                    ("category\titemId\tprice")
 * Reply: a flat array, three numbers per click: clicksBefore, sessionStart (ms), categoriesSeen
 */
export const OBSERVE_CLICKS_N = `${SESSION_CONTEXT}
local ttl = ARGV[1]
local cap = tonumber(ARGV[2])
local reply = {}
local touched = {}
for i, key in ipairs(KEYS) do
  local base = 3 + 3 * (i - 1)
  local t = tonumber(ARGV[base + 1])
  local added = redis.call('ZADD', key, 'NX', t, ARGV[base] .. '\\t' .. ARGV[base + 2])
  local before, start, distinct = sessionContext(key, t)
  if added == 1 then
    local size = redis.call('ZCARD', key)
    if size > cap then redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1) end
  end
  if not touched[key] then
    touched[key] = true
    redis.call('EXPIRE', key, ttl)
  end
  reply[#reply + 1] = before
  reply[#reply + 1] = start
  reply[#reply + 1] = distinct
end
return reply
`;

/**
 * peekSession-1: the context a click at a given time would get, without recording it
 * (the predict API scores without changing session state).
 *   KEYS[1]  session sorted set
 *   ARGV[1]  event time, ms
 * Reply: { clicksBefore, sessionStart (ms), categoriesSeen }
 */
export const PEEK_SESSION_1 = `${SESSION_CONTEXT}
local before, start, distinct = sessionContext(KEYS[1], tonumber(ARGV[1]))
return { before, start, distinct }
`;
