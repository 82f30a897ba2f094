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
 * loadSessions-N: the clicks of each session, for the scorer's in-process copy of them.
 *   KEYS[i]  session sorted set (scorerKeys.session)
 * Reply: one flat array per key: member, score (event time, ms), member, score, … oldest first
 */
export const LOAD_SESSIONS_N = `
local reply = {}
for i, key in ipairs(KEYS) do
  reply[i] = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
end
return reply
`;

/**
 * recordClicks-N: add clicks to their sessions (a click already there is left as it is, so a
 * replay writes nothing new), keep each session's newest clicks up to the cap, renew its expiry.
 *   KEYS[i]  session sorted set of the i-th group of clicks (each key once)
 *   ARGV[1]  idle expiry of a session, seconds
 *   ARGV[2]  most clicks kept per session (oldest dropped beyond it)
 *   then per key: the number of its clicks n, then n pairs of event time (ms) and member
 *            ("eventId\tcategory\titemId\tprice")
 * Reply: the number of clicks added
 */
export const RECORD_CLICKS_N = `
local ttl = ARGV[1]
local cap = tonumber(ARGV[2])
local at = 3
local total = 0
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  local entries = {}
  for j = 1, 2 * n do entries[j] = ARGV[at + j] end
  at = at + 1 + 2 * n
  local added = redis.call('ZADD', key, 'NX', unpack(entries))
  if added > 0 then
    total = total + added
    local size = redis.call('ZCARD', key)
    if size > cap then redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1) end
  end
  redis.call('EXPIRE', key, ttl)
end
return total
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
