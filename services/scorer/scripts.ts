// Redis Lua scripts of the scorer, one per atomic command, named after the command and its
// number of keys. Each opens with what its KEYS, ARGV and reply are.

/**
 * observeClick-1: record a click in its session and return the click's session context.
 * Defined by event time, like services/model/session.ts, so replays and late clicks are safe.
 *   KEYS[1]  session sorted set (scorerKeys.session)
 *   ARGV[1]  eventId
 *   ARGV[2]  event time, ms
 *   ARGV[3]  category
 *   ARGV[4]  idle expiry of the session, seconds
 *   ARGV[5]  most clicks kept per session (oldest dropped beyond it)
 * Reply: { clicksBefore, sessionStart (ms), categoriesSeen }
 */
export const OBSERVE_CLICK_1 = `
local key = KEYS[1]
local t = tonumber(ARGV[2])
redis.call('ZADD', key, 'NX', t, ARGV[1] .. '\\t' .. ARGV[3])
local earlier = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. ARGV[2])
local categories = {}
local distinct = 0
for _, member in ipairs(earlier) do
  local category = string.match(member, '\\t(.*)$')
  if category and not categories[category] then
    categories[category] = true
    distinct = distinct + 1
  end
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local start = t
if first[2] then start = math.min(t, tonumber(first[2])) end
local size = redis.call('ZCARD', key)
local cap = tonumber(ARGV[5])
if size > cap then redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1) end
redis.call('EXPIRE', key, ARGV[4])
return { #earlier, start, distinct }
`;

/**
 * peekSession-1: the context a click at a given time would get, without recording it
 * (the predict API scores without changing session state).
 *   KEYS[1]  session sorted set
 *   ARGV[1]  event time, ms
 * Reply: { clicksBefore, sessionStart (ms), categoriesSeen }
 */
export const PEEK_SESSION_1 = `
local key = KEYS[1]
local t = tonumber(ARGV[1])
local earlier = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
local categories = {}
local distinct = 0
for _, member in ipairs(earlier) do
  local category = string.match(member, '\\t(.*)$')
  if category and not categories[category] then
    categories[category] = true
    distinct = distinct + 1
  end
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local start = t
if first[2] then start = math.min(t, tonumber(first[2])) end
return { #earlier, start, distinct }
`;
