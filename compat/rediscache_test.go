package compat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules"
	"github.com/rulesgate/rulesgate/rules/redistest"
)

func newRedisCaches(t *testing.T, n int) (*redistest.Server, []*RedisCache) {
	t.Helper()
	srv := redistest.Start(t)
	var caches []*RedisCache
	for range n {
		client, err := rules.NewRedisClient(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		caches = append(caches, NewRedisCache(client, rules.DefaultRedisPrefix))
	}
	return srv, caches
}

// TestRedisCache: api.cache in Redis is one cache for every replica, with
// Auth0's limits: entries expire, at most 20 of them and 8 KB in all, the
// one expiring first making room; keys of 64 bytes and values of 4 KB at
// most.
func TestRedisCache(t *testing.T) {
	_, caches := newRedisCaches(t, 2)
	a, b := caches[0], caches[1]
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)

	if err := a.Set(ctx, "k", "v", hour); err != nil {
		t.Fatal(err)
	}
	e, ok, err := b.Get(ctx, "k") // another replica
	if err != nil || !ok || e.Value != "v" || e.ExpiresAt.UnixMilli() != hour.UnixMilli() {
		t.Fatalf("get from another replica: %+v %v %v", e, ok, err)
	}
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Get(ctx, "k"); ok {
		t.Error("a deleted entry is still there")
	}

	if err := a.Set(ctx, "short", "v", time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, ok, _ := a.Get(ctx, "short"); ok {
		t.Error("an expired entry is still there")
	}

	if err := a.Set(ctx, strings.Repeat("k", CacheMaxKey+1), "v", hour); !errors.Is(err, ErrCacheKey) {
		t.Errorf("a 65-byte key: got %v, want ErrCacheKey", err)
	}
	if err := a.Set(ctx, "k", strings.Repeat("v", CacheMaxValue+1), hour); !errors.Is(err, ErrCacheValue) {
		t.Errorf("a value over 4 KB: got %v, want ErrCacheValue", err)
	}

	for i := range CacheMaxEntries + 1 { // entry 0 expires first
		if err := a.Set(ctx, fmt.Sprintf("e%02d", i), "v", hour.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := a.Get(ctx, "e00"); ok {
		t.Error("the 21st entry did not push out the one expiring first")
	}
	if _, ok, _ := a.Get(ctx, fmt.Sprintf("e%02d", CacheMaxEntries)); !ok {
		t.Error("the 21st entry is not readable")
	}

	big := strings.Repeat("x", CacheMaxValue)
	for i := range 3 {
		if err := b.Set(ctx, fmt.Sprintf("big%d", i), big, hour.Add(time.Hour+time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := a.Get(ctx, "big0"); ok {
		t.Error("past 8 KB in all, the entry expiring first stayed")
	}
	if _, ok, _ := a.Get(ctx, "big2"); !ok {
		t.Error("the last big entry is not readable")
	}
}

// TestRedisCache_Down: with Redis down the cache answers errors, which
// api.cache turns into a miss and an "unavailable" result, never a failed
// token request.
func TestRedisCache_Down(t *testing.T) {
	srv, caches := newRedisCaches(t, 1)
	srv.Stop()
	c := caches[0]
	if err := c.Set(context.Background(), "k", "v", time.Now().Add(time.Hour)); err == nil {
		t.Error("set with Redis down: no error")
	}
	p := newTestPipeline(t, Config{Cache: c, Actions: compileAs(t, "action", action(`
  local r = api.cache.set("k", "v")
  api.accessToken.setCustomClaim("https://example.com/set", r.type .. ":" .. (r.code or ""))
  api.accessToken.setCustomClaim("https://example.com/get", api.cache.get("k") == nil)`))})
	res, err := p.Run(context.Background(), &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("a token request failed with Redis down: %v", err)
	}
	if res.Claims["https://example.com/set"] != "error:unavailable" || res.Claims["https://example.com/get"] != true {
		t.Errorf("claims: %v", res.Claims)
	}
}
