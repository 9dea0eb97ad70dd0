-- A key's spend for /v1/key (key format sy:v1, see ../redis.rs).
--
-- KEYS  1-4 spend of the current daily, weekly, monthly, never period   5 held sums
-- Reply {'seed'} when a spend key is missing, else {'ok', spend 1, 2, 3, 4, held pico-USD}

for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return {'seed'}
  end
end
return {'ok',
  redis.call('HGET', KEYS[1], 'usd'), redis.call('HGET', KEYS[2], 'usd'),
  redis.call('HGET', KEYS[3], 'usd'), redis.call('HGET', KEYS[4], 'usd'),
  redis.call('HGET', KEYS[5], 'usd') or '0'}
