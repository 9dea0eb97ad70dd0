-- Admits one request of one API key, atomically (key format sy:v1, see ../redis.rs):
-- releases holds whose lease ran out, checks requests per minute, tokens per minute and the
-- budget, and on success counts the request and adds a hold. The rules and their order are
-- the in-process limiter's (rate.rs, budget.rs):
--   * a request refused by a rate limit counts nothing; one refused by the budget still
--     counts against requests per minute, as in-process, and holds nothing;
--   * the budget refuses once settled spend + outstanding holds reach the limit, so
--     concurrent requests overspend by at most the hold of the last one admitted;
--   * nothing of the admission is written until every check has passed, and the held sums
--     are raised before the hold is added: Redis does not undo a script that fails half
--     way, and a hold left without its sums would, when its lease ends, be taken off sums
--     it never raised (a sum without its hold only refuses too much);
--   * held sums never go below zero: a negative one (left by an earlier version, whose
--     failed admissions could leave such holds) is read as zero, or it would lift the
--     limit on every instance.
-- Pico-USD amounts travel as decimal strings and change only through INCRBY/HINCRBY (exact
-- 64-bit integers); Lua doubles are used only to compare them (exact below $9000 of spend,
-- within a few pico-USD above). A hold is at most 2^53 (redis.rs), so the held sums stay far
-- below 2^63; an admission that would take one past MAX_HELD fails before any write.
--
-- KEYS  1-4 spend of the current daily, weekly, monthly, never period (hash: usd, at;
--           absent: not seeded)
--       5 holds (zset: "id:pico:tokens" scored by lease deadline ms)
--       6 held sums (hash: usd, tok)
--       7 requests this window   8 requests last window
--       9 tokens this window     10 tokens last window
-- ARGV  1 now ms   2 window start ms   3 the spend key the limit reads (1-4; 0: no limit)
--       4 limit (pico-USD)   5 hold (pico-USD, the worst case)   6 rpm (0: none)
--       7 tpm (0: none)   8 prompt tokens held in flight   9 hold id   10 lease deadline ms
--       11 ttl ms of the hold keys   12 ttl ms of the window keys   13 '1' when rate limited
-- Reply {'seed'}                                  a spend key is missing: seed, then retry
--       {'rate', kind, previous, current}         refused by 'requests' or 'tokens'
--       {'budget', spent, held}                   refused by the budget
--       {'ok', requests previous, requests current, spend 1, 2, 3, 4,
--        tokens previous, tokens current, tokens held (this request's included)}

for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return {'seed'}
  end
end

local now = tonumber(ARGV[1])
local MAX_HELD = 2^62

-- A hold outlives its lease only when its instance died before settling it. Releasing it
-- is due whatever this admission decides.
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for _, member in ipairs(expired) do
  local usd, tok = string.match(member, ':(%d+):(%d+)$')
  if usd then
    release('usd', usd)
    release('tok', tok)
  end
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
end

local held_usd, held_tok = held('usd'), held('tok')
local rated = ARGV[13] == '1'
local rq_prev, rq_cur = 0, 0
local tk_prev, tk_cur = 0, 0
if rated then
  -- A sliding minute from two fixed ones: the last window weighs what still overlaps.
  local weight = 1 - (now - tonumber(ARGV[2])) / 60000
  local rpm, tpm = tonumber(ARGV[6]), tonumber(ARGV[7])
  rq_prev = tonumber(redis.call('GET', KEYS[8]) or '0')
  rq_cur = tonumber(redis.call('GET', KEYS[7]) or '0')
  if rpm > 0 and rq_prev * weight + rq_cur + 1 > rpm then
    return {'rate', 'requests', rq_prev, rq_cur}
  end
  if tpm > 0 then
    tk_prev = tonumber(redis.call('GET', KEYS[10]) or '0')
    tk_cur = tonumber(redis.call('GET', KEYS[9]) or '0')
    local used = tk_prev * weight + tk_cur + tonumber(held_tok)
    if used + tonumber(ARGV[8]) > tpm and used > 0 then
      return {'rate', 'tokens', tk_prev, tk_cur}
    end
  end
end

-- Decided now, answered once the request is counted.
local over_budget
local slot = tonumber(ARGV[3])
if slot > 0 then
  local spent = redis.call('HGET', KEYS[slot], 'usd')
  if tonumber(spent) + tonumber(held_usd) >= tonumber(ARGV[4]) then
    over_budget = {'budget', spent, held_usd}
  end
end
if not over_budget and (tonumber(held_usd) + tonumber(ARGV[5]) > MAX_HELD
    or tonumber(held_tok) + tonumber(ARGV[8]) > MAX_HELD) then
  return redis.error_reply('ERR the held sums would pass 2^62')
end

-- Every check passed: from here on, only writes that cannot fail on these values.
if rated then
  rq_cur = redis.call('INCR', KEYS[7])
  redis.call('PEXPIRE', KEYS[7], ARGV[12])
end
if over_budget then
  return over_budget
end

if ARGV[5] ~= '0' then redis.call('HINCRBY', KEYS[6], 'usd', ARGV[5]) end
if ARGV[8] ~= '0' then redis.call('HINCRBY', KEYS[6], 'tok', ARGV[8]) end
redis.call('ZADD', KEYS[5], ARGV[10], ARGV[9] .. ':' .. ARGV[5] .. ':' .. ARGV[8])
-- Every hold's deadline is at most a lease away: the keys outlive their members.
redis.call('PEXPIRE', KEYS[5], ARGV[11])
redis.call('PEXPIRE', KEYS[6], ARGV[11])

return {'ok', rq_prev, rq_cur,
  redis.call('HGET', KEYS[1], 'usd'), redis.call('HGET', KEYS[2], 'usd'),
  redis.call('HGET', KEYS[3], 'usd'), redis.call('HGET', KEYS[4], 'usd'),
  tk_prev, tk_cur, held('tok')}
