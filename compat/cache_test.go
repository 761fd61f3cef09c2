package compat

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a MemoryCache clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newClockedCache returns an empty MemoryCache on a fake clock.
func newClockedCache() (*MemoryCache, *fakeClock) {
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	c := NewMemoryCache()
	c.now = clock.Now
	return c, clock
}

func TestCacheExpiry(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) }
	at := func(d time.Duration) float64 { return float64(now.Add(d).UnixMilli()) }
	tests := []struct {
		name          string
		ttl, expireAt float64
		want          time.Time
	}{
		// Auth0 does: "If no lifetime is specified, a default of lifetime
		// of 15 minutes will be used."
		{"default", 0, 0, now.Add(15 * time.Minute)},
		{"negative ttl is the default", -1000, 0, now.Add(15 * time.Minute)},
		// Auth0 does: ttl is the entry's lifetime in milliseconds.
		{"ttl", ms(time.Minute), 0, now.Add(time.Minute)},
		{"ttl of one millisecond", 1, 0, now.Add(time.Millisecond)},
		{"ttl of exactly 24 h", ms(24 * time.Hour), 0, now.Add(24 * time.Hour)},
		// Auth0 does: lifetimes may not exceed the maximum, 24 hours.
		{"ttl capped at 24 h", ms(48 * time.Hour), 0, now.Add(24 * time.Hour)},
		// Auth0 does: expires_at is an absolute time, in milliseconds
		// since the epoch.
		{"expires_at", 0, at(time.Hour), now.Add(time.Hour)},
		{"expires_at capped at 24 h", 0, at(72 * time.Hour), now.Add(24 * time.Hour)},
		// Auth0 does: "If both options are supplied, the earlier expiry of
		// the two will be used."
		{"both, ttl earlier", ms(time.Minute), at(time.Hour), now.Add(time.Minute)},
		{"both, expires_at earlier", ms(time.Hour), at(time.Minute), now.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cacheExpiry(now, tt.ttl, tt.expireAt); !got.Equal(tt.want) {
				t.Errorf("cacheExpiry(now, %v, %v): got now+%v, want now+%v",
					tt.ttl, tt.expireAt, got.Sub(now), tt.want.Sub(now))
			}
		})
	}
}

func TestMemoryCache_SetGetDelete(t *testing.T) {
	ctx := context.Background()
	c, clock := newClockedCache()
	expires := clock.Now().Add(time.Minute)

	if _, ok, err := c.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("Get of a missing key: got found %v, err %v, want a miss", ok, err)
	}
	if err := c.Set(ctx, "k", "v1", expires); err != nil {
		t.Fatalf("Set: got %v, want nil", err)
	}
	e, ok, err := c.Get(ctx, "k")
	if !ok || err != nil {
		t.Fatalf("Get after Set: got found %v, err %v, want a hit", ok, err)
	}
	if want := (CacheEntry{Value: "v1", ExpiresAt: expires}); e != want {
		t.Errorf("Get after Set: got %+v, want %+v", e, want)
	}

	// Auth0 does: set stores "or updates" the value at key.
	later := expires.Add(time.Minute)
	if err := c.Set(ctx, "k", "v2", later); err != nil {
		t.Fatalf("Set again: got %v, want nil", err)
	}
	if e, _, _ := c.Get(ctx, "k"); e.Value != "v2" || !e.ExpiresAt.Equal(later) {
		t.Errorf("Get after update: got %+v, want v2 until %v", e, later)
	}

	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: got %v, want nil", err)
	}
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Errorf("Get after Delete: got a hit, want a miss")
	}
	// Deleting a missing key is not an error.
	if err := c.Delete(ctx, "never-set"); err != nil {
		t.Errorf("Delete of a missing key: got %v, want nil", err)
	}
}

func TestMemoryCache_Expiry(t *testing.T) {
	// Auth0 does: a record never remains beyond its expiry.
	ctx := context.Background()
	c, clock := newClockedCache()
	if err := c.Set(ctx, "k", "v", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		advance time.Duration
		want    bool
	}{
		{0, true},
		{59 * time.Second, true},
		{time.Second, false}, // at the expiry instant
		{time.Hour, false},
	}
	elapsed := time.Duration(0)
	for _, tt := range tests {
		clock.Add(tt.advance)
		elapsed += tt.advance
		if _, ok, _ := c.Get(ctx, "k"); ok != tt.want {
			t.Errorf("Get after %v: got found %v, want %v", elapsed, ok, tt.want)
		}
	}
}

func TestMemoryCache_EntryLimits(t *testing.T) {
	tests := []struct {
		name       string
		key, value string
		wantErr    error
	}{
		// Auth0 does: keys up to 64 bytes, values up to 4 KB.
		{"key of 64 bytes", strings.Repeat("k", CacheMaxKey), "v", nil},
		{"key of 65 bytes", strings.Repeat("k", CacheMaxKey+1), "v", ErrCacheKey},
		{"empty key", "", "v", ErrCacheKey},
		{"value of 4096 bytes", "k", strings.Repeat("v", CacheMaxValue), nil},
		{"value of 4097 bytes", "k", strings.Repeat("v", CacheMaxValue+1), ErrCacheValue},
		{"empty value", "k", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, clock := newClockedCache()
			err := c.Set(ctx, tt.key, tt.value, clock.Now().Add(time.Minute))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Set: got %v, want %v", err, tt.wantErr)
			}
			_, ok, _ := c.Get(ctx, tt.key)
			if want := tt.wantErr == nil; ok != want {
				t.Errorf("Get after Set: got found %v, want %v", ok, want)
			}
		})
	}
}

func TestMemoryCache_MaxEntries(t *testing.T) {
	// Auth0 does: 20 entries per trigger. The 21st makes room by evicting
	// the entry that expires first, and is itself readable.
	ctx := context.Background()
	c, clock := newClockedCache()
	now := clock.Now()
	for i := range CacheMaxEntries {
		// k07 expires first; the others a minute apart, later.
		expires := now.Add(time.Duration(i+10) * time.Minute)
		if i == 7 {
			expires = now.Add(time.Minute)
		}
		if err := c.Set(ctx, fmt.Sprintf("k%02d", i), "v", expires); err != nil {
			t.Fatalf("Set k%02d: %v", i, err)
		}
	}
	if err := c.Set(ctx, "new", "v", now.Add(time.Hour)); err != nil {
		t.Fatalf("Set of the 21st: got %v, want nil", err)
	}

	if _, ok, _ := c.Get(ctx, "new"); !ok {
		t.Errorf("the 21st entry: got a miss, want a hit")
	}
	if _, ok, _ := c.Get(ctx, "k07"); ok {
		t.Errorf("the entry expiring first: got a hit, want it evicted")
	}
	kept := 0
	for i := range CacheMaxEntries {
		if _, ok, _ := c.Get(ctx, fmt.Sprintf("k%02d", i)); ok {
			kept++
		}
	}
	if want := CacheMaxEntries - 1; kept != want {
		t.Errorf("older entries kept: got %d, want %d", kept, want)
	}

	// Updating a key already in a full cache evicts nothing.
	if err := c.Set(ctx, "k00", "v2", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	kept = 0
	for i := range CacheMaxEntries {
		if _, ok, _ := c.Get(ctx, fmt.Sprintf("k%02d", i)); ok {
			kept++
		}
	}
	if want := CacheMaxEntries - 1; kept != want {
		t.Errorf("entries kept after an update: got %d, want %d", kept, want)
	}
}

func TestMemoryCache_ExpiredMakeRoomFirst(t *testing.T) {
	// Entries past their time make room before any live entry is evicted.
	ctx := context.Background()
	c, clock := newClockedCache()
	now := clock.Now()
	for i := range CacheMaxEntries {
		life := time.Hour
		if i < 5 {
			life = time.Minute // the first five lapse
		}
		if err := c.Set(ctx, fmt.Sprintf("k%02d", i), "v", now.Add(life)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(2 * time.Minute)
	if err := c.Set(ctx, "new", "v", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < CacheMaxEntries; i++ {
		if _, ok, _ := c.Get(ctx, fmt.Sprintf("k%02d", i)); !ok {
			t.Errorf("live entry k%02d: got a miss, want a hit", i)
		}
	}
	if _, ok, _ := c.Get(ctx, "new"); !ok {
		t.Errorf("new entry: got a miss, want a hit")
	}
}

func TestMemoryCache_MaxTotal(t *testing.T) {
	tests := []struct {
		name     string
		n        int // entries set, each expiring a minute after the last
		key      func(i int) string
		valueLen int
		wantKept []int // indexes readable at the end
	}{
		// Keys and values together within 8 KiB: everything is kept.
		{"within the total", CacheMaxEntries, func(i int) string { return fmt.Sprintf("%02d", i) }, 400,
			[]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		// Two full-size values with their keys pass 8 KiB: the entry that
		// expires first makes room.
		{"two full values", 2, func(i int) string { return fmt.Sprintf("k%d", i) }, CacheMaxValue,
			[]int{1}},
		// Three values of 3 KiB: at most two fit.
		{"three 3 KiB values", 3, func(i int) string { return fmt.Sprintf("k%d", i) }, 3 << 10,
			[]int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, clock := newClockedCache()
			now := clock.Now()
			for i := range tt.n {
				expires := now.Add(time.Duration(i+1) * time.Minute)
				if err := c.Set(ctx, tt.key(i), strings.Repeat("v", tt.valueLen), expires); err != nil {
					t.Fatalf("Set %d: %v", i, err)
				}
			}
			var kept []int
			total := 0
			for i := range tt.n {
				if e, ok, _ := c.Get(ctx, tt.key(i)); ok {
					kept = append(kept, i)
					total += len(tt.key(i)) + len(e.Value)
				}
			}
			if fmt.Sprint(kept) != fmt.Sprint(tt.wantKept) {
				t.Errorf("kept: got %v, want %v", kept, tt.wantKept)
			}
			if total > CacheMaxTotal {
				t.Errorf("total of keys and values: got %d, want at most %d", total, CacheMaxTotal)
			}
		})
	}
}

func TestMemoryCache_Concurrent(t *testing.T) {
	// The cache is shared by every request's actions; run with -race. Each
	// goroutine owns two keys, 16 in all, so nothing is evicted and every
	// goroutine reads back what it wrote.
	const goroutines, runs = 8, 200
	ctx := context.Background()
	c := NewMemoryCache()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			keys := [2]string{fmt.Sprintf("g%d-a", g), fmt.Sprintf("g%d-b", g)}
			for i := range runs {
				key, value := keys[i%2], fmt.Sprintf("%d-%d", g, i)
				if err := c.Set(ctx, key, value, time.Now().Add(time.Minute)); err != nil {
					t.Errorf("Set %s: %v", key, err)
					return
				}
				if e, ok, _ := c.Get(ctx, key); !ok || e.Value != value {
					t.Errorf("Get %s: got %q (found %v), want %q", key, e.Value, ok, value)
					return
				}
				if i%5 == 0 {
					if err := c.Delete(ctx, key); err != nil {
						t.Errorf("Delete %s: %v", key, err)
						return
					}
					if _, ok, _ := c.Get(ctx, key); ok {
						t.Errorf("Get %s after Delete: got a hit, want a miss", key)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// Tests of api.cache, as actions use it.

// cacheClaims runs p once under ctx and returns the claims of the token.
func cacheClaims(t *testing.T, ctx context.Context, p *Pipeline) map[string]any {
	t.Helper()
	res, err := p.Run(ctx, &Transaction{ClientID: "c1", GrantedScopes: granted})
	if err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	return res.Claims
}

func TestActionCache_SetThenGetInLaterRun(t *testing.T) {
	// Auth0 does: values persist across executions of the trigger, and
	// get returns {value, expires_at}, expires_at in milliseconds since
	// the epoch.
	cache := NewMemoryCache()
	setter := newActionPipeline(t, Config{Cache: cache}, action(`
local r = api.cache.set("k", "v")
api.accessToken.setCustomClaim("https://example.com/type", r.type)
api.accessToken.setCustomClaim("https://example.com/value", r.record.value)
api.accessToken.setCustomClaim("https://example.com/expires_at", r.record.expires_at)`))
	getter := newActionPipeline(t, Config{Cache: cache}, action(`
local r = api.cache.get("k")
api.accessToken.setCustomClaim("https://example.com/value", r.value)
api.accessToken.setCustomClaim("https://example.com/expires_at", r.expires_at)
api.accessToken.setCustomClaim("https://example.com/missing", api.cache.get("nope") == nil)`))

	before := time.Now()
	set := cacheClaims(t, context.Background(), setter)
	after := time.Now()
	if set["https://example.com/type"] != "success" || set["https://example.com/value"] != "v" {
		t.Errorf("set result: got %v, want type success and record.value v", set)
	}
	expiresAt, ok := set["https://example.com/expires_at"].(int64)
	if !ok {
		t.Fatalf("record.expires_at: got %#v, want milliseconds since the epoch", set["https://example.com/expires_at"])
	}
	lo, hi := before.Add(CacheDefaultTTL).UnixMilli(), after.Add(CacheDefaultTTL).UnixMilli()
	if expiresAt < lo || expiresAt > hi {
		t.Errorf("record.expires_at: got %d, want within [%d, %d] (15 min from now)", expiresAt, lo, hi)
	}

	got := cacheClaims(t, context.Background(), getter)
	if got["https://example.com/value"] != "v" {
		t.Errorf("get in a later run: value %v, want v", got["https://example.com/value"])
	}
	if got["https://example.com/expires_at"] != expiresAt {
		t.Errorf("get in a later run: expires_at %v, want %d", got["https://example.com/expires_at"], expiresAt)
	}
	if got["https://example.com/missing"] != true {
		t.Errorf("get of a missing key: got a record, want nil")
	}
}

func TestActionCache_Delete(t *testing.T) {
	cache := NewMemoryCache()
	if err := cache.Set(context.Background(), "k", "v", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p := newActionPipeline(t, Config{Cache: cache}, action(`
local before = api.cache.get("k")
local r = api.cache.delete("k")
api.accessToken.setCustomClaim("https://example.com/before", before and before.value or "none")
api.accessToken.setCustomClaim("https://example.com/type", r.type)
api.accessToken.setCustomClaim("https://example.com/after", api.cache.get("k") == nil)`))
	got := cacheClaims(t, context.Background(), p)
	want := map[string]any{"https://example.com/before": "v", "https://example.com/type": "success",
		"https://example.com/after": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("claims: got %v, want %v", got, want)
	}
	if _, ok, _ := cache.Get(context.Background(), "k"); ok {
		t.Errorf("cache after api.cache.delete: got a hit, want a miss")
	}
}

func TestActionCache_SetResult(t *testing.T) {
	tests := []struct {
		name string
		call string // Lua expression calling api.cache.set
		want string // type, then code when an error
	}{
		// Auth0 does: set returns a CacheWriteResult, {type = "success"}...
		{"success", `api.cache.set("k", "v")`, "success"},
		{"value of 4096 bytes", `api.cache.set("k", string.rep("v", 4096))`, "success"},
		{"key of 64 bytes", `api.cache.set(string.rep("k", 64), "v")`, "success"},
		// ...or {type = "error", code = ...}. Auth0 does: values are strings.
		{"number value", `api.cache.set("k", 5)`, "error invalid_value"},
		{"table value", `api.cache.set("k", {a = 1})`, "error invalid_value"},
		{"boolean value", `api.cache.set("k", true)`, "error invalid_value"},
		{"nil value", `api.cache.set("k", nil)`, "error invalid_value"},
		// Auth0 does: keys up to 64 bytes, values up to 4 KB.
		{"key of 65 bytes", `api.cache.set(string.rep("k", 65), "v")`, "error invalid_key"},
		{"empty key", `api.cache.set("", "v")`, "error invalid_key"},
		{"value of 4097 bytes", `api.cache.set("k", string.rep("v", 4097))`, "error invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newActionPipeline(t, Config{}, action(`
local r = `+tt.call+`
local s = r.type
if r.code then s = s .. " " .. r.code end
if r.type == "error" and r.record ~= nil then s = s .. " with a record" end
if r.type == "success" and r.record == nil then s = s .. " without a record" end
api.accessToken.setCustomClaim("https://example.com/r", s)`))
			got := cacheClaims(t, context.Background(), p)
			if got["https://example.com/r"] != tt.want {
				t.Errorf("%s: got %v, want %q", tt.call, got["https://example.com/r"], tt.want)
			}
		})
	}
}

func TestActionCache_TTL(t *testing.T) {
	tests := []struct {
		name string
		opts string // Lua options table
		want time.Duration
	}{
		{"default", `nil`, CacheDefaultTTL},
		// Auth0 does: ttl is in milliseconds.
		{"ttl", `{ttl = 60000}`, time.Minute},
		// Auth0 does: at most 24 hours.
		{"ttl capped", `{ttl = 3 * 24 * 3600 * 1000}`, CacheMaxTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := NewMemoryCache()
			p := newActionPipeline(t, Config{Cache: cache}, action(`
local r = api.cache.set("k", "v", `+tt.opts+`)
api.accessToken.setCustomClaim("https://example.com/expires_at", r.record.expires_at)`))
			before := time.Now()
			got := cacheClaims(t, context.Background(), p)
			after := time.Now()
			expiresAt, _ := got["https://example.com/expires_at"].(int64)
			lo, hi := before.Add(tt.want).UnixMilli(), after.Add(tt.want).UnixMilli()
			if expiresAt < lo || expiresAt > hi {
				t.Errorf("record.expires_at: got %d, want within [%d, %d]", expiresAt, lo, hi)
			}
			e, ok, _ := cache.Get(context.Background(), "k")
			if !ok || e.ExpiresAt.UnixMilli() != expiresAt {
				t.Errorf("cached entry: got %+v (found %v), want expiry %d", e, ok, expiresAt)
			}
		})
	}
}

func TestActionCache_SharedAcrossActions(t *testing.T) {
	// Auth0 does: values are scoped to the trigger, so one action reads
	// what another set, in the same run or a later one.
	p := newActionPipeline(t, Config{}, action(`
if api.cache.get("seen") == nil then
  api.cache.set("seen", event.client.client_id)
end`), action(`
api.accessToken.setCustomClaim("https://example.com/first", api.cache.get("seen").value)`))
	for i, client := range []string{"c1", "c2"} {
		res, err := p.Run(context.Background(), &Transaction{ClientID: client, GrantedScopes: granted})
		if err != nil {
			t.Fatalf("run %d: got %v, want nil", i, err)
		}
		if got := res.Claims["https://example.com/first"]; got != "c1" {
			t.Errorf("run %d: got %v, want c1", i, got)
		}
	}
}

// recordingCache is a Cache that records the contexts it is called with
// and fails as told.
type recordingCache struct {
	mu   sync.Mutex
	ctxs []context.Context
	err  error
	*MemoryCache
}

func (c *recordingCache) record(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctxs = append(c.ctxs, ctx)
}

func (c *recordingCache) Get(ctx context.Context, key string) (CacheEntry, bool, error) {
	c.record(ctx)
	if c.err != nil {
		return CacheEntry{}, false, c.err
	}
	return c.MemoryCache.Get(ctx, key)
}

func (c *recordingCache) Set(ctx context.Context, key, value string, expiresAt time.Time) error {
	c.record(ctx)
	if c.err != nil {
		return c.err
	}
	return c.MemoryCache.Set(ctx, key, value, expiresAt)
}

func (c *recordingCache) Delete(ctx context.Context, key string) error {
	c.record(ctx)
	if c.err != nil {
		return c.err
	}
	return c.MemoryCache.Delete(ctx, key)
}

type ctxKey struct{}

func TestActionCache_Backend(t *testing.T) {
	const body = `
local set = api.cache.set("k", "v")
local got = api.cache.get("k")
local del = api.cache.delete("k")
api.accessToken.setCustomClaim("https://example.com/r",
  set.type .. " " .. (set.code or "-") .. " " .. (got and got.value or "nil") .. " " ..
  del.type .. " " .. (del.code or "-"))`
	tests := []struct {
		name string
		err  error
		want string
	}{
		// Config.Cache backs api.cache.
		{"working backend", nil, "success - v success -"},
		// Auth0 does: a failed write returns {type = "error", code = ...},
		// and cached data is ephemeral. A backend that cannot be reached
		// is a miss for get and an error result for set and delete, never
		// a failed request.
		{"unreachable backend", errors.New("connection refused"), "error unavailable nil error unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := &recordingCache{err: tt.err, MemoryCache: NewMemoryCache()}
			p := newActionPipeline(t, Config{Cache: cache}, action(body))
			ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "req-1"), time.Minute)
			defer cancel()
			got := cacheClaims(t, ctx, p)
			if got["https://example.com/r"] != tt.want {
				t.Errorf("results: got %v, want %q", got["https://example.com/r"], tt.want)
			}
			if len(cache.ctxs) != 3 {
				t.Errorf("backend calls: got %d, want 3", len(cache.ctxs))
			}
		})
	}
}

func TestActionCache_BackendContext(t *testing.T) {
	// A Cache backed by a network store needs the request's context: its
	// values (for tracing) and its deadline. Go's rule is that a function
	// is never handed a nil Context.
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"with a deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "req-1"), time.Minute)
		}},
		{"without a deadline", func() (context.Context, context.CancelFunc) {
			return context.WithValue(context.Background(), ctxKey{}, "req-1"), func() {}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := &recordingCache{MemoryCache: NewMemoryCache()}
			p := newActionPipeline(t, Config{Cache: cache}, action(`
api.cache.set("k", "v")
api.cache.get("k")
api.cache.delete("k")`))
			ctx, cancel := tt.ctx()
			defer cancel()
			cacheClaims(t, ctx, p)
			if len(cache.ctxs) != 3 {
				t.Fatalf("backend calls: got %d, want 3", len(cache.ctxs))
			}
			for i, got := range cache.ctxs {
				if got == nil {
					t.Errorf("call %d: got a nil context, want the request's", i)
					continue
				}
				if v := got.Value(ctxKey{}); v != "req-1" {
					t.Errorf("call %d: context value got %v, want req-1", i, v)
				}
			}
		})
	}
}
