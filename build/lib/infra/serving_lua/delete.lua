-- Delete of one row from the serving copy: the protocol of infra/serving_store.py. The
-- Python writers and the gridlake-redis Flink connector (a Maven resource of its jar) run
-- this very file.
--
-- KEYS: the row's hash, the table's index (sorted set).
-- ARGV: index member, ordering field, ordering value of the delete.
--
-- Ordering, as for an upsert: the delete is refused when the stored hash's ordering value
-- is greater than the delete's, so a row written after the delete was decided survives it.
-- An empty or non-numeric ordering value always applies.
-- Returns 1 when a hash or index member was removed, else 0.
local incoming = tonumber(ARGV[3])
if incoming then
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '')
  if stored and stored > incoming then return 0 end
end
local removed = redis.call('DEL', KEYS[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
if removed > 0 then return 1 end
return 0
