package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedCache shares what the gateway fetches from the upstream (its
// discovery document and JWKS) between replicas, so that a fleet asks the
// upstream once where each replica would have asked. Each replica keeps
// its own copy in memory in front of it.
type SharedCache interface {
	// Get returns a document and when it was fetched; ok is false when
	// there is none.
	Get(ctx context.Context, name string) (body []byte, fetched time.Time, ok bool, err error)
	// Put stores a document fetched at a time.
	Put(ctx context.Context, name string, body []byte, fetched time.Time) error
	// Lock takes the fleet-wide lock on name for ttl; false when another
	// replica holds it. unlock lets it go before ttl, if still held.
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// RedisSharedCache is a SharedCache in Redis: one hash per document, with
// its body and fetch time, and SET NX PX locks.
type RedisSharedCache struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisSharedCache returns a cache under prefix (the rule store's, so
// that all of rulesgate's keys share a Cluster slot).
func NewRedisSharedCache(client redis.UniversalClient, prefix string) *RedisSharedCache {
	return &RedisSharedCache{client: client, prefix: prefix + "upstream:"}
}

// Get implements SharedCache.
func (c *RedisSharedCache) Get(ctx context.Context, name string) ([]byte, time.Time, bool, error) {
	vals, err := c.client.HMGet(ctx, c.prefix+name, "body", "fetched").Result()
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("shared cache get %s: %w", name, err)
	}
	body, ok1 := vals[0].(string)
	ms, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return nil, time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return nil, time.Time{}, false, nil
	}
	return []byte(body), time.UnixMilli(n), true, nil
}

// Put implements SharedCache.
func (c *RedisSharedCache) Put(ctx context.Context, name string, body []byte, fetched time.Time) error {
	err := c.client.HSet(ctx, c.prefix+name, "body", body, "fetched", fetched.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("shared cache put %s: %w", name, err)
	}
	return nil
}

// unlockScript deletes a lock only if it still holds the holder's token:
// a lock that expired and was taken by another replica stays.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Lock implements SharedCache.
func (c *RedisSharedCache) Lock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	key, token := c.prefix+name+":lock", rand.Text()
	ok, err := c.client.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("shared cache lock %s: %w", name, err)
	}
	unlock := func() {
		uctx, cancel := context.WithTimeout(context.Background(), sharedCallTime)
		defer cancel()
		unlockScript.Run(uctx, c.client, []string{key}, token) // best effort: the TTL ends it anyway
	}
	return unlock, ok, nil
}

// How a replica waits for another's fetch.
const (
	sharedWait     = 3 * time.Second       // then it fetches itself
	sharedPoll     = 50 * time.Millisecond // how often it looks meanwhile
	sharedLockTTL  = jwksFetchTimeout      // a lock outlives no fetch
	sharedCallTime = time.Second           // bound of one call to the cache
)

// errNotShared is sharedFetch's answer when the fleet had nothing newer:
// the caller fetches from the upstream itself.
var errNotShared = errors.New("no shared copy")

// sharedFetch returns the fleet's copy of a document fetched after
// newerThan that accept takes: one held already, or the one the replica
// that takes the lock fetches, with fetch, while the others wait for it;
// mine says whether this replica fetched it. Only a document accept takes
// is shared, so that one bad answer cannot reach the fleet. Any failure of
// the cache itself is errNotShared or fetch's own result: the cache never
// stands between a replica and its upstream.
func sharedFetch(ctx context.Context, c SharedCache, name string, newerThan time.Time, now func() time.Time,
	fetch func(context.Context) ([]byte, error), accept func([]byte) bool) (body []byte, fetched time.Time, mine bool, err error) {
	get := func() ([]byte, time.Time, bool) {
		cctx, cancel := context.WithTimeout(ctx, sharedCallTime)
		defer cancel()
		body, at, ok, err := c.Get(cctx, name)
		return body, at, ok && err == nil && at.After(newerThan) && accept(body)
	}
	if body, at, ok := get(); ok {
		return body, at, false, nil
	}

	lctx, cancel := context.WithTimeout(ctx, sharedCallTime)
	unlock, locked, err := c.Lock(lctx, name, sharedLockTTL)
	cancel()
	if err != nil {
		return nil, time.Time{}, false, errNotShared
	}
	if locked {
		defer unlock()
		// A fleet-mate may have fetched and let go of the lock between our
		// look and our lock.
		if body, at, ok := get(); ok {
			return body, at, false, nil
		}
		body, err := fetch(ctx)
		if err != nil {
			return nil, time.Time{}, true, err
		}
		at := now()
		if !accept(body) {
			return body, at, true, nil // the caller sees what is wrong with it
		}
		pctx, cancel := context.WithTimeout(ctx, sharedCallTime)
		c.Put(pctx, name, body, at) // best effort: the others fetch themselves after sharedWait
		cancel()
		return body, at, true, nil
	}

	for deadline := time.Now().Add(sharedWait); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, time.Time{}, false, ctx.Err()
		case <-time.After(sharedPoll):
		}
		if body, at, ok := get(); ok {
			return body, at, false, nil
		}
	}
	return nil, time.Time{}, false, errNotShared
}

// shortHash names an upstream in the shared cache, so that fleets of
// different upstreams can share one Redis.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// discover reads the upstream's discovery document and shares it with the
// fleet; when the upstream cannot be reached, the fleet's last copy will
// do, so that a replica can start during an upstream outage.
func (g *Gateway) discover(ctx context.Context, base *url.URL, shared SharedCache) (*Upstream, error) {
	up, err := Discover(ctx, g.client, base)
	if shared == nil {
		return up, err
	}
	cctx, cancel := context.WithTimeout(ctx, sharedCallTime)
	defer cancel()
	name := "discovery:" + shortHash(base.String())
	if err == nil {
		if up.Document != nil {
			if doc, jerr := json.Marshal(up.Document); jerr == nil {
				shared.Put(cctx, name, doc, time.Now()) // best effort
			}
		}
		return up, nil
	}
	body, at, ok, cerr := shared.Get(cctx, name)
	if cerr != nil || !ok {
		return nil, err
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return nil, err
	}
	g.logger.Warn("upstream discovery failed; using the fleet's copy",
		slog.String("fetched", at.UTC().Format(time.RFC3339)), slog.String(keyCause, err.Error()))
	return fromDocument(base, doc)
}
