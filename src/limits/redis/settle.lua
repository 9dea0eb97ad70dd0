-- Settles one hold (key format sy:v1, see ../redis.rs): releases it and charges what the
-- request really cost. Exactly once: only the call that removes the hold charges, so a
-- settle retried after a lost reply changes nothing. A hold already released by its lease
-- (an instance that settled more than a lease late) charges nothing here; the ledger still
-- has the record.
-- A spend key that is absent (a new period begun meanwhile, or Redis lost its data) is left
-- absent: the next admission seeds it from the ledger, which will hold this request's
-- record, instead of a partial figure that would block the seed.
--
-- KEYS  1-4 spend of the periods containing now (hash: usd, at)   5 holds   6 held sums
--       7 tokens this window
-- ARGV  1 hold member   2 held pico-USD   3 held tokens   4 cost pico-USD   5 tokens used
--       6 ttl ms of the window key
-- Reply {settled (1 or 0), spend 1, 2, 3, 4 (false where absent)}

local settled = 0
if redis.call('ZREM', KEYS[5], ARGV[1]) == 1 then
  settled = 1
  release('usd', ARGV[2])
  release('tok', ARGV[3])
  if ARGV[4] ~= '0' then
    for i = 1, 4 do
      if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[i], 'usd', ARGV[4]) end
    end
  end
  if ARGV[5] ~= '0' then
    redis.call('INCRBY', KEYS[7], ARGV[5])
    redis.call('PEXPIRE', KEYS[7], ARGV[6])
  end
end
return {settled,
  redis.call('HGET', KEYS[1], 'usd'), redis.call('HGET', KEYS[2], 'usd'),
  redis.call('HGET', KEYS[3], 'usd'), redis.call('HGET', KEYS[4], 'usd')}
