package redisrate

import "github.com/redis/go-redis/v9"

// gcraScript is the generic cell rate algorithm of resilience.RateLimiter,
// run inside Redis so that every replica's take of a key is one atomic
// step on one shared state.
//
// KEYS[1] is the bucket; ARGV are the interval between tokens in
// microseconds, the burst in tokens and the number of tokens to take. The
// bucket's whole state is its theoretical arrival time (tat), in
// microseconds of Redis's own clock: read by TIME inside the script, so
// replicas whose clocks disagree still share one timeline. Times are
// microseconds rather than nanoseconds because Lua numbers are doubles,
// exact only up to 2^53, and the tat is written with %.0f because Lua's
// tostring would round it to 14 digits.
//
// A take that fits sets the new tat with a TTL of the time until the
// bucket is full again: by then a missing key and the stored one decide
// alike, so idle keys expire by themselves. A refused take writes
// nothing.
//
// It returns {allowed (0 or 1), tokens left, microseconds until the take
// would fit (0 when allowed)}.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local span = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local newTat = tat + n * interval
local wait = newTat - now - span
if wait > 0 then
  return {0, math.floor((span - (tat - now)) / interval), wait}
end
local ttl = newTat - now
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', string.format('%.0f', math.ceil(ttl / 1000)))
return {1, math.floor((span - ttl) / interval), 0}
`)
