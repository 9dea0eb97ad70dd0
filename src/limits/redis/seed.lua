-- Initialises a key's spend for its current periods from the ledger (key format sy:v1, see
-- ../redis.rs). Only where absent: a figure already in Redis is newer than the ledger's (the
-- ledger lags by its write batch) and is kept; when several instances seed at once, the
-- first wins. `at` records when the ledger was read (see charge.lua).
--
-- KEYS  1-4 spend of the current daily, weekly, monthly, never period (hash: usd, at)
-- ARGV  1-4 the ledger's spend for each (pico-USD)
--       5-8 unix second at which each key expires (its period's end plus a margin; 0: never)
--       9 when the ledger was read (ms)

for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'usd', ARGV[i], 'at', ARGV[9])
    if ARGV[4 + i] ~= '0' then redis.call('EXPIREAT', KEYS[i], ARGV[4 + i]) end
  end
end
return 1
