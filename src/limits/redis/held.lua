-- Shared by admit.lua and settle.lua (prepended to each, redis.rs): the held sums, in the
-- hash KEYS[6] (fields usd, tok).

-- A held sum, as a decimal string; a negative one (an earlier version could leave one: see
-- admit.lua) is reset to zero.
local function held(field)
  local sum = redis.call('HGET', KEYS[6], field) or '0'
  if tonumber(sum) < 0 then
    redis.call('HSET', KEYS[6], field, '0')
    return '0'
  end
  return sum
end

-- Takes a released hold's amount off a held sum, never below zero (doubles round
-- monotonically, so `>` here implies it for the exact integers: HINCRBY stays positive).
local function release(field, amount)
  local sum = held(field)
  if amount == '0' or sum == '0' then return end
  if tonumber(sum) > tonumber(amount) then
    redis.call('HINCRBY', KEYS[6], field, '-' .. amount)
  else
    redis.call('HSET', KEYS[6], field, '0')
  end
end

