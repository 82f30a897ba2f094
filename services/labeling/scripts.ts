// Redis Lua scripts of the labeling queue, one per atomic command, named after the command and
// its number of keys. Task-specific keys are built inside the scripts from the queue prefix
// (ARGV[1]), as they depend on which task is picked. Return codes are in QueueCode (errors.ts).

/**
 * Include: requeueExpired(prefix, ready, leases, now) puts tasks whose lease expired back in
 * the ready set (if they still need labels) and counts the timeouts.
 */
const REQUEUE_EXPIRED = `
local function requeueExpired(prefix, ready, leases, now)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  for _, lease in ipairs(expired) do
    redis.call('ZREM', leases, lease)
    local id = string.match(lease, '^(.*)|')
    local task = prefix .. 'task:' .. id
    if redis.call('HGET', task, 'status') == 'open' then
      local priority = tonumber(redis.call('HGET', task, 'priority'))
      redis.call('HINCRBY', task, 'leased', -1)
      redis.call('ZADD', ready, -priority, id)
    end
    redis.call('HINCRBY', prefix .. 'stats', 'leaseTimeouts', 1)
  end
end
`;

/**
 * addTask: add a task unless one of its de-duplication keys is taken (a varying number of keys).
 *   KEYS[1] ready   KEYS[2] task hash   KEYS[3..] dedupe markers (a session's, an item's, ...)
 *   ARGV[1] prefix  ARGV[2] task id  ARGV[3] priority  ARGV[4] payload (JSON)
 *   ARGV[5] labels required  ARGV[6] now (ms)  ARGV[7] dedupe ttl (s)
 *   ARGV[8] most tasks added per clock hour (0 = no limit)
 *   ARGV[9] stratum ('' = none)  ARGV[10] rare boost
 * A task of a stratum (a segment) that has had n tasks so far, this one included, gets priority
 * × (1 + boost / sqrt(n)): labels from rarely reviewed segments teach the model more.
 * Returns 1 added, 0 duplicate (a dedupe key taken or task id exists), -4 over the hourly budget.
 */
export const ADD_TASK = `
local prefix = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', prefix .. 'stats', 'duplicates', 1)
  return 0
end
-- Every marker taken, or none: the keys this task took are given back when it is refused.
local taken = {}
local function giveBack()
  for _, key in ipairs(taken) do redis.call('DEL', key) end
end
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2], 'NX', 'EX', ARGV[7]) == false then
    giveBack()
    redis.call('HINCRBY', prefix .. 'stats', 'duplicates', 1)
    return 0
  end
  taken[#taken + 1] = KEYS[i]
end
local budget = tonumber(ARGV[8])
if budget > 0 then
  local hour = prefix .. 'budget:' .. math.floor(tonumber(ARGV[6]) / 3600000)
  local used = redis.call('INCR', hour)
  redis.call('EXPIRE', hour, 7200)
  if used > budget then
    redis.call('DECR', hour)
    -- The keys were not used up: a later task of the same session may still come in.
    giveBack()
    redis.call('HINCRBY', prefix .. 'stats', 'overBudget', 1)
    return -4
  end
end
local priority = tonumber(ARGV[3])
if ARGV[9] ~= '' then
  local n = redis.call('HINCRBY', prefix .. 'strata', ARGV[9], 1)
  priority = priority * (1 + tonumber(ARGV[10]) / math.sqrt(n))
end
redis.call('HSET', KEYS[2], 'payload', ARGV[4], 'priority', tostring(priority), 'required', ARGV[5], 'createdAt', ARGV[6], 'labels', 0, 'leased', 0, 'status', 'open')
redis.call('ZADD', KEYS[1], -priority, ARGV[2])
redis.call('HINCRBY', prefix .. 'stats', 'added', 1)
return 1
`;

/**
 * nextTask-2: lease the highest-priority task this labeler may take (has not labeled or skipped
 * it, does not hold it already). Expired leases go back first; tasks older than max age expire.
 *   KEYS[1] ready   KEYS[2] leases
 *   ARGV[1] prefix  ARGV[2] labeler id  ARGV[3] now (ms)  ARGV[4] lease (ms)  ARGV[5] max age (ms)
 * Returns { taskId, payload, leaseExpiresAt } or false when nothing is available.
 */
export const NEXT_TASK_2 = `${REQUEUE_EXPIRED}
local prefix = ARGV[1]
local labeler = ARGV[2]
local now = tonumber(ARGV[3])
requeueExpired(prefix, KEYS[1], KEYS[2], now)
local offset = 0
while true do
  local ids = redis.call('ZRANGE', KEYS[1], offset, offset + 49)
  if #ids == 0 then return false end
  for _, id in ipairs(ids) do
    local task = prefix .. 'task:' .. id
    local fields = redis.call('HMGET', task, 'status', 'createdAt', 'required', 'labels', 'leased', 'payload')
    if fields[1] ~= 'open' then
      redis.call('ZREM', KEYS[1], id)
    elseif now - tonumber(fields[2]) > tonumber(ARGV[5]) then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HSET', task, 'status', 'expired')
      redis.call('HINCRBY', prefix .. 'stats', 'expired', 1)
    elseif redis.call('HEXISTS', prefix .. 'labels:' .. id, labeler) == 0
      and redis.call('SISMEMBER', prefix .. 'skips:' .. id, labeler) == 0
      and redis.call('ZSCORE', KEYS[2], id .. '|' .. labeler) == false then
      local expires = now + tonumber(ARGV[4])
      redis.call('ZADD', KEYS[2], expires, id .. '|' .. labeler)
      local leased = redis.call('HINCRBY', task, 'leased', 1)
      -- Stays offered while labels + leases are short of the labels required.
      if tonumber(fields[4]) + leased >= tonumber(fields[3]) then redis.call('ZREM', KEYS[1], id) end
      return { id, fields[6], tostring(expires) }
    end
  end
  offset = offset + 50
end
`;

/**
 * Include: mayLabel(prefix, leases, id, labeler, now) says whether a labeler may label a task
 * now: code 0, or -1 unknown task, -2 no lease (expired or never taken), -3 already labeled
 * (QueueCode); with the labels so far and the labels required.
 */
const MAY_LABEL = `
local function mayLabel(prefix, leases, id, labeler, now)
  local task = prefix .. 'task:' .. id
  if redis.call('EXISTS', task) == 0 then return -1, 0, 0 end
  local labels = prefix .. 'labels:' .. id
  local required = tonumber(redis.call('HGET', task, 'required'))
  if redis.call('HEXISTS', labels, labeler) == 1 then return -3, redis.call('HLEN', labels), required end
  local expiry = redis.call('ZSCORE', leases, id .. '|' .. labeler)
  if expiry == false or tonumber(expiry) < tonumber(now) then return -2, 0, 0 end
  return 0, redis.call('HLEN', labels), required
end
`;

/**
 * checkLabel-1: whether a labeler may label a task now, changing nothing (the API publishes the
 * label to Kafka before it records it, so a label is never recorded without being published).
 *   KEYS[1] leases
 *   ARGV[1] prefix  ARGV[2] task id  ARGV[3] labeler id  ARGV[4] now (ms)
 * Returns { code, labelsSoFar, required }: code 0 may label; negative codes as submitLabel-2.
 */
export const CHECK_LABEL_1 = `${MAY_LABEL}
local code, labels, required = mayLabel(ARGV[1], KEYS[1], ARGV[2], ARGV[3], ARGV[4])
return { code, labels, required }
`;

/**
 * submitLabel-2: record a labeler's label for a task they hold a lease on. Idempotent: the same
 * labeler submitting the same task again gets ALREADY_LABELED and nothing changes.
 *   KEYS[1] ready   KEYS[2] leases
 *   ARGV[1] prefix  ARGV[2] task id  ARGV[3] labeler id  ARGV[4] label (JSON)  ARGV[5] now (ms)
 *   ARGV[6] most completed task ids kept for export  ARGV[7] most labels a task may grow to (0: no growth)
 * Labels are counted per hour in `hourly` (hour start → labels) for the console, kept ~60 days.
 * Returns { code, labelsSoFar, required }: code 1 recorded, 2 recorded and task complete;
 * negative codes: see QueueCode. On completion the task id goes to the completed list (capped at
 * ARGV[6]) and, for tasks with several labels, each labeler's agreement with the majority is
 * counted.
 */
export const SUBMIT_LABEL_2 = `${MAY_LABEL}
local prefix = ARGV[1]
local id = ARGV[2]
local labeler = ARGV[3]
local code, labelsSoFar, mayRequire = mayLabel(prefix, KEYS[2], id, labeler, ARGV[5])
if code < 0 then return { code, labelsSoFar, mayRequire } end
local task = prefix .. 'task:' .. id
local labels = prefix .. 'labels:' .. id
local lease = id .. '|' .. labeler
redis.call('ZREM', KEYS[2], lease)
redis.call('HSET', labels, labeler, ARGV[4])
redis.call('HINCRBY', task, 'leased', -1)
redis.call('HINCRBY', prefix .. 'labelers', 'labeled:' .. labeler, 1)
local hour = tonumber(ARGV[5]) - tonumber(ARGV[5]) % 3600000
if redis.call('HINCRBY', prefix .. 'hourly', tostring(hour), 1) == 1 then
  for _, h in ipairs(redis.call('HKEYS', prefix .. 'hourly')) do
    if tonumber(h) < hour - 60 * 86400000 then redis.call('HDEL', prefix .. 'hourly', h) end
  end
end
local count = redis.call('HINCRBY', task, 'labels', 1)
local required = tonumber(redis.call('HGET', task, 'required'))
local most = tonumber(ARGV[7] or '0')
if count >= required and count > 1 and required < most then
  -- Adaptive overlap: labels that disagree (not all alike, and no answer two ahead) ask one more.
  local all = redis.call('HGETALL', labels)
  local votes = {}
  for i = 2, #all, 2 do votes[all[i]] = (votes[all[i]] or 0) + 1 end
  local first, second = 0, 0
  for _, n in pairs(votes) do
    if n > first then first, second = n, first elseif n > second then second = n end
  end
  if first < count and first - second < 2 then
    required = required + 1
    redis.call('HSET', task, 'required', required)
    redis.call('ZADD', KEYS[1], -tonumber(redis.call('HGET', task, 'priority')), id)
    redis.call('HINCRBY', prefix .. 'stats', 'overlapGrown', 1)
    return { 1, count, required }
  end
end
if count >= required then
  redis.call('HSET', task, 'status', 'complete')
  redis.call('ZREM', KEYS[1], id)
  redis.call('HINCRBY', prefix .. 'stats', 'completed', 1)
  redis.call('LPUSH', prefix .. 'completed', id)
  redis.call('LTRIM', prefix .. 'completed', 0, tonumber(ARGV[6]) - 1)
  if count > 1 then
    local all = redis.call('HGETALL', labels)
    local votes = {}
    for i = 2, #all, 2 do votes[all[i]] = (votes[all[i]] or 0) + 1 end
    -- A majority needs more than half the labels; on a tie nobody agrees with it.
    local majority = nil
    for value, n in pairs(votes) do if n * 2 > count then majority = value end end
    for i = 1, #all, 2 do
      redis.call('HINCRBY', prefix .. 'labelers', 'judged:' .. all[i], 1)
      if all[i + 1] == majority then redis.call('HINCRBY', prefix .. 'labelers', 'agreed:' .. all[i], 1) end
    end
  end
  return { 2, count, required }
end
return { 1, count, required }
`;

/**
 * releaseTask-2: give a leased task back (skip or "unclear"); it is not offered to this labeler
 * again.
 *   KEYS[1] ready   KEYS[2] leases
 *   ARGV[1] prefix  ARGV[2] task id  ARGV[3] labeler id  ARGV[4] now (ms)  ARGV[5] stat to count
 * Returns 1 released, or a negative QueueCode.
 */
export const RELEASE_TASK_2 = `
local prefix = ARGV[1]
local id = ARGV[2]
local task = prefix .. 'task:' .. id
if redis.call('EXISTS', task) == 0 then return -1 end
local lease = id .. '|' .. ARGV[3]
local expiry = redis.call('ZSCORE', KEYS[2], lease)
if expiry == false or tonumber(expiry) < tonumber(ARGV[4]) then return -2 end
redis.call('ZREM', KEYS[2], lease)
redis.call('SADD', prefix .. 'skips:' .. id, ARGV[3])
redis.call('HINCRBY', task, 'leased', -1)
if redis.call('HGET', task, 'status') == 'open' then
  redis.call('ZADD', KEYS[1], -tonumber(redis.call('HGET', task, 'priority')), id)
end
redis.call('HINCRBY', prefix .. 'stats', ARGV[5], 1)
return 1
`;
