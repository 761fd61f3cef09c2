package compat

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Auth0's limits on api.cache (Actions limitations: cached data).
const (
	// CacheDefaultTTL is an entry's lifetime when the action names none.
	CacheDefaultTTL = 15 * time.Minute
	// CacheMaxTTL is the longest lifetime an entry can have.
	CacheMaxTTL = 24 * time.Hour
	// CacheMaxEntries is how many entries the trigger's cache holds.
	CacheMaxEntries = 20
	// CacheMaxKey and CacheMaxValue bound one entry, in bytes.
	CacheMaxKey   = 64
	CacheMaxValue = 4 << 10
	// CacheMaxTotal bounds the keys and values of all entries together.
	CacheMaxTotal = 8 << 10
)

// Errors of a cache write, as the code of Auth0's CacheWriteResult.
var (
	ErrCacheKey   = errors.New("invalid_key")
	ErrCacheValue = errors.New("invalid_value")
)

// CacheEntry is a cached value and the time it expires.
type CacheEntry struct {
	Value     string
	ExpiresAt time.Time
}

// Cache is the store behind the actions' api.cache, shared by every action
// of the credentials-exchange trigger. Implementations enforce Auth0's
// limits; like Auth0's, an entry may be gone before it expires.
type Cache interface {
	// Get returns the live entry at key, if any.
	Get(ctx context.Context, key string) (CacheEntry, bool, error)
	// Set stores value at key until expiresAt.
	Set(ctx context.Context, key, value string, expiresAt time.Time) error
	// Delete removes the entry at key, if any.
	Delete(ctx context.Context, key string) error
}

// MemoryCache is a Cache in the process's memory, for one replica.
type MemoryCache struct {
	mu      sync.Mutex
	entries map[string]CacheEntry
	now     func() time.Time
}

// NewMemoryCache returns an empty cache.
func NewMemoryCache() *MemoryCache {
	return &MemoryCache{entries: map[string]CacheEntry{}, now: time.Now}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, key string) (CacheEntry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && !c.now().Before(e.ExpiresAt) {
		delete(c.entries, key)
		return CacheEntry{}, false, nil
	}
	return e, ok, nil
}

// Set implements Cache. When the entry would take the cache past Auth0's
// count or size limits, the entries that expire first make room, as an
// entry may be evicted before its time.
func (c *MemoryCache) Set(_ context.Context, key, value string, expiresAt time.Time) error {
	if err := checkEntry(key, value); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	c.expire()
	for len(c.entries) >= CacheMaxEntries || c.size()+len(key)+len(value) > CacheMaxTotal {
		c.evictFirst()
	}
	c.entries[key] = CacheEntry{Value: value, ExpiresAt: expiresAt}
	return nil
}

// Delete implements Cache.
func (c *MemoryCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	return nil
}

// expire drops the entries past their time.
func (c *MemoryCache) expire() {
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.ExpiresAt) {
			delete(c.entries, k)
		}
	}
}

// evictFirst drops the entry that expires first.
func (c *MemoryCache) evictFirst() {
	first := ""
	for k, e := range c.entries {
		if first == "" || e.ExpiresAt.Before(c.entries[first].ExpiresAt) {
			first = k
		}
	}
	delete(c.entries, first)
}

func (c *MemoryCache) size() int {
	n := 0
	for k, e := range c.entries {
		n += len(k) + len(e.Value)
	}
	return n
}

// checkEntry checks one entry against Auth0's limits.
func checkEntry(key, value string) error {
	if key == "" || len(key) > CacheMaxKey {
		return ErrCacheKey
	}
	if len(value) > CacheMaxValue {
		return ErrCacheValue
	}
	return nil
}

// cacheExpiry returns when an entry set now with the action's options
// expires: ttl in milliseconds, expires_at in milliseconds since the epoch,
// the earlier of the two when both are given (Auth0 does), else the
// default; never later than the longest lifetime.
func cacheExpiry(now time.Time, ttlMillis, expiresAtMillis float64) time.Time {
	limit := now.Add(CacheMaxTTL)
	at := limit
	if ttlMillis > 0 {
		at = now.Add(time.Duration(min(ttlMillis, float64(CacheMaxTTL.Milliseconds()))) * time.Millisecond)
	}
	if expiresAtMillis > 0 {
		at = minTime(at, time.UnixMilli(int64(min(expiresAtMillis, float64(limit.UnixMilli())))))
	}
	if !(ttlMillis > 0) && !(expiresAtMillis > 0) { // NaN included
		at = now.Add(CacheDefaultTTL)
	}
	return at
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
