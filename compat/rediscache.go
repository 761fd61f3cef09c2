package compat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is a Cache in Redis, shared by every replica, with Auth0's
// limits kept by Redis scripts, so that concurrent writers on many
// replicas cannot take the cache past them. Values live in a hash, their
// expiry times (Unix milliseconds) in a sorted set.
type RedisCache struct {
	client redis.UniversalClient
	values string // hash: key → value
	expiry string // sorted set: key scored by expiry
}

// NewRedisCache returns the actions' cache under prefix, which must be
// the rule store's for the keys to share its Cluster slot.
func NewRedisCache(client redis.UniversalClient, prefix string) *RedisCache {
	return &RedisCache{client: client, values: prefix + "cache", expiry: prefix + "cache:expiry"}
}

// redisCacheGet returns a live value, or nothing; it drops what expired.
var redisCacheGet = redis.NewScript(`
local at = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not at then return false end
if tonumber(at) <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
return {redis.call('HGET', KEYS[1], ARGV[1]), at}
`)

// redisCacheSet stores one entry after dropping expired ones and, while
// the cache is past Auth0's count or size limits, the one that expires
// first. ARGV: key, value, expiry ms, now ms, max entries, max total.
var redisCacheSet = redis.NewScript(`
local key, value, at, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local maxEntries, maxTotal = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('HDEL', KEYS[1], key)
redis.call('ZREM', KEYS[2], key)
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
end
local function total()
  local n = 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all do n = n + #all[i] end
  return n
end
while redis.call('HLEN', KEYS[1]) >= maxEntries or total() + #key + #value > maxTotal do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not first then break end
  redis.call('HDEL', KEYS[1], first)
  redis.call('ZREM', KEYS[2], first)
end
redis.call('HSET', KEYS[1], key, value)
redis.call('ZADD', KEYS[2], at, key)
return 1
`)

// redisCacheCall bounds one api.cache call: a Redis that hangs must cost
// an action a miss, not the rule timeout.
const redisCacheCall = 250 * time.Millisecond

// Get implements Cache.
func (c *RedisCache) Get(ctx context.Context, key string) (CacheEntry, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, redisCacheCall)
	defer cancel()
	res, err := redisCacheGet.Run(ctx, c.client, []string{c.values, c.expiry}, key, time.Now().UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return CacheEntry{}, false, nil
	}
	if err != nil {
		return CacheEntry{}, false, fmt.Errorf("cache get: %w", err)
	}
	value, _ := res[0].(string)
	at, _ := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	return CacheEntry{Value: value, ExpiresAt: time.UnixMilli(at)}, true, nil
}

// Set implements Cache.
func (c *RedisCache) Set(ctx context.Context, key, value string, expiresAt time.Time) error {
	if err := checkEntry(key, value); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, redisCacheCall)
	defer cancel()
	err := redisCacheSet.Run(ctx, c.client, []string{c.values, c.expiry}, key, value,
		expiresAt.UnixMilli(), time.Now().UnixMilli(), CacheMaxEntries, CacheMaxTotal).Err()
	if err != nil {
		return fmt.Errorf("cache set: %w", err)
	}
	return nil
}

// Delete implements Cache.
func (c *RedisCache) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, redisCacheCall)
	defer cancel()
	_, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, c.values, key)
		p.ZRem(ctx, c.expiry, key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache delete: %w", err)
	}
	return nil
}
