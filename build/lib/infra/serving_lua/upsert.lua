-- Upsert of one row into the serving copy: the protocol of infra/serving_store.py. The
-- Python writers and the gridlake-redis Flink connector (a Maven resource of its jar) run
-- this very file.
--
-- KEYS: the row's hash, the table's index (sorted set).
-- ARGV: index member, index score, ordering field, ordering value, number n of non-null
--       columns, n column/value pairs, then the null columns.
--
-- Ordering: a row whose ordering value is lower than the stored hash's is refused, so the
-- newer version of a key wins whatever order the writers arrive in (ties go to the later
-- write, as in the lake). An empty or non-numeric ordering value always applies.
-- Returns 1 when the row was written, 0 when it was refused.
local incoming = tonumber(ARGV[4])
if incoming then
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '')
  if stored and stored > incoming then return 0 end
end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 6, 5 + 2 * n)) end
-- null columns are removed, so that the hash always equals the latest row
if #ARGV > 5 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 6 + 2 * n, #ARGV)) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
