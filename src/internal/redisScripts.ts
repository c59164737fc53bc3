/**
 * The Redis store's Lua scripts, and their registration on a client as ioredis commands. Each script
 * touches one user's hash only (one key, so one Cluster slot) and is one atomic step.
 *
 * @internal
 */
import type { Cluster, Redis } from "ioredis"

// Each script touches the user's hash only (one slot). Fields are read with the pattern of the entry
// codec's head, `[4,version,expiresAt,lastSeenAt,createdAt,` (format 3, which the codec still writes for
// an entry with the service's lifetime and which a previous version left behind, has the same head),
// without parsing the rest. Redis's own clock (TIME) decides what is dead for longer than the retention, as
// it is the clock its key expiry follows; the cap counts live entries by the application's clock, as the
// port says.
const redisNow = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
`

// KEYS: the user's hash. ARGV: field, value, 'create' | 'update', expected version (update), the key's
// expiry for this entry (expiresAt + retention), retention, cap ('' for none), cap's now, longest value.
// Answers 1 when it wrote, 0 when it did not.
const saveScript = `${redisNow}
local key, field = KEYS[1], ARGV[1]
local kind = redis.call('TYPE', key).ok
if ARGV[3] == 'update' then
  if kind ~= 'hash' then return 0 end
  local current = redis.call('HGET', key, field)
  if not current or string.match(current, '^%[[34],(%d+),') ~= ARGV[4] then return 0 end
elseif kind == 'hash' then
  if redis.call('HEXISTS', key, field) == 1 then return 0 end
  local retention, cap, capNow, longest = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
  local live = {}
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name, value = all[i], all[i + 1]
    local expiresAt, lastSeenAt, createdAt = string.match(value, '^%[[34],%d+,(%d+),(%d+),(%d+),')
    if #value > longest then
      -- unreadable by any version of the codec: garbage
      redis.call('HDEL', key, name)
    elseif expiresAt then
      expiresAt = tonumber(expiresAt)
      if expiresAt + retention <= now then
        redis.call('HDEL', key, name)
      elseif cap and expiresAt > capNow then
        live[#live + 1] = { name, tonumber(lastSeenAt), tonumber(createdAt) }
      end
    end
  end
  if cap and #live >= cap then
    table.sort(live, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      if a[3] ~= b[3] then return a[3] < b[3] end
      return a[1] < b[1]
    end)
    for i = 1, #live - cap + 1 do redis.call('HDEL', key, live[i][1]) end
  end
elseif kind ~= 'none' then
  -- someone else's value of another type: garbage, which a create replaces
  redis.call('DEL', key)
end
redis.call('HSET', key, field, ARGV[2])
local ttl = redis.call('PTTL', key)
if ttl < 0 or now + ttl < tonumber(ARGV[5]) then redis.call('PEXPIREAT', key, ARGV[5]) end
return 1
`

// KEYS: the user's hash. ARGV: field to keep ('' for none), longest value. Answers how many live
// sessions (by Redis's clock) it deleted, reading each value's head as the compare-and-set does (a
// corrupt value with a valid head counts).
const deleteUserScript = `${redisNow}
local key, except, longest = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local all = redis.call('HGETALL', key)
local live, kept = 0, false
for i = 1, #all, 2 do
  if all[i] == except then
    kept = true
  else
    local expiresAt = string.match(all[i + 1], '^%[[34],%d+,(%d+),')
    if expiresAt and #all[i + 1] <= longest and tonumber(expiresAt) > now then live = live + 1 end
  end
end
if not kept then
  redis.call('DEL', key)
else
  for i = 1, #all, 2 do
    if all[i] ~= except then redis.call('HDEL', key, all[i]) end
  end
end
return live
`

export interface Scripts<R> {
  effectSessionsSave(
    key: string,
    field: string,
    value: string,
    mode: "create" | "update",
    expectedVersion: string,
    keyExpiry: number,
    retention: number,
    cap: number | "",
    capNow: number,
    longest: number
  ): R
  effectSessionsDeleteUser(key: string, except: string, longest: number): R
}

export type Client = Redis | Cluster

export interface Pipeline extends Scripts<Pipeline> {
  hdel(key: string, field: string): Pipeline
  call(command: string, ...args: Array<string | number>): Pipeline
  exec(): Promise<Array<[Error | null, unknown]> | null>
}

export const withScripts = (client: Client): Client & Scripts<Promise<unknown>> => {
  if (!("effectSessionsSave" in client)) {
    client.defineCommand("effectSessionsSave", { numberOfKeys: 1, lua: saveScript })
    client.defineCommand("effectSessionsDeleteUser", { numberOfKeys: 1, lua: deleteUserScript })
  }
  return client as Client & Scripts<Promise<unknown>>
}
