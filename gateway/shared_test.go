package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
	"github.com/rulesgate/rulesgate/rules/redistest"
)

func newSharedCache(t *testing.T, srv *redistest.Server) *RedisSharedCache {
	t.Helper()
	client, err := rules.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return NewRedisSharedCache(client, rules.DefaultRedisPrefix)
}

// TestShared_OneJWKSFetchForTheFleet: three replicas on one Redis fetch the
// upstream JWKS once between them; when the upstream rotates its key, the
// first token signed by the new key makes one fetch for the whole fleet,
// whichever replicas see it, at the same time.
func TestShared_OneJWKSFetchForTheFleet(t *testing.T) {
	srv := redistest.Start(t)
	up := newFakeIssuer(t, "/oauth/token")
	var fleet []*testGateway
	var skew atomic.Int64 // the fleet's clock runs ahead by this many ns
	for range 3 {
		gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true},
			func(c *Config) { c.Shared = newSharedCache(t, srv) })
		gw.verifier.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		fleet = append(fleet, gw)
	}
	for _, gw := range fleet {
		if status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
			t.Fatalf("status %d %v", status, answer)
		}
	}
	if n := up.jwksCalls.Load(); n != 1 {
		t.Errorf("upstream JWKS fetches for three replicas: got %d, want 1", n)
	}
	shared := 0.0
	for _, gw := range fleet {
		shared += testutil.ToFloat64(gw.metrics.jwksFetches.WithLabelValues("shared"))
	}
	if shared != 2 {
		t.Errorf("replicas that took the fleet's copy: got %v, want 2", shared)
	}

	// The upstream rotates: a new key signs, both are published.
	rotated := testKey(t, "upstream-2")
	up.set(func(f *fakeIssuer) {
		f.jwks = []jose.JSONWebKey{f.key.Public(), rotated.Public()}
		f.key = rotated
	})
	skew.Store(int64(jwksMinRefetch + time.Second)) // past each replica's refetch limit
	before := up.jwksCalls.Load()
	var wg sync.WaitGroup
	for _, gw := range fleet {
		wg.Go(func() {
			if status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
				t.Errorf("after the rotation: status %d %v", status, answer)
			}
		})
	}
	wg.Wait()
	if n := up.jwksCalls.Load() - before; n != 1 {
		t.Errorf("upstream JWKS fetches after a rotation, three replicas at once: got %d, want 1", n)
	}
}

// TestShared_RedisDownFetchesAlone: a shared cache that cannot be reached
// never stands between a replica and its upstream.
func TestShared_RedisDownFetchesAlone(t *testing.T) {
	srv := redistest.Start(t)
	up := newFakeIssuer(t, "/oauth/token")
	cache := newSharedCache(t, srv)
	srv.Stop()
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true}, func(c *Config) { c.Shared = cache })
	if status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
		t.Fatalf("with Redis down: status %d %v", status, answer)
	}
	if n := up.jwksCalls.Load(); n != 1 {
		t.Errorf("upstream JWKS fetches: got %d, want 1", n)
	}
}

// TestShared_DiscoveryDuringOutage: a replica that starts while the
// upstream's discovery fails takes the fleet's copy of the document.
func TestShared_DiscoveryDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	up := newFakeIssuer(t, "/oauth2/token") // not Auth0's path: only discovery knows it
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		up.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	first := newTestGateway(t, front.URL, compat.Config{}, func(c *Config) { c.Shared = newSharedCache(t, srv) })
	if first.TokenPath() != "/oauth2/token" {
		t.Fatalf("token path: %s", first.TokenPath())
	}

	down.Store(true)
	u, _ := url.Parse(front.URL)
	cfg := Config{Upstream: u, PublicURL: "http://gw.example", Keys: first.keySet(),
		Logger: discardLogger(), Shared: newSharedCache(t, srv)}
	gw, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start during the outage: %v", err)
	}
	if gw.TokenPath() != "/oauth2/token" {
		t.Errorf("token path from the fleet's copy: got %s, want /oauth2/token", gw.TokenPath())
	}

	cfg.Shared = nil
	if _, err := New(context.Background(), cfg); err == nil {
		t.Error("without the fleet's copy, a start during the outage succeeded")
	}
}

// TestShared_BadJWKSNotShared: a JWKS answer that is not a key set (a
// proxy's maintenance page with a 200) is never shared: the next replica
// asks the upstream itself.
func TestShared_BadJWKSNotShared(t *testing.T) {
	srv := redistest.Start(t)
	up := newFakeIssuer(t, "/oauth/token")
	up.noDiscovery = true // Auth0's paths, on the front below
	var broken atomic.Bool
	broken.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() && r.URL.Path == "/.well-known/jwks.json" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>back soon</html>"))
			return
		}
		up.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	first := newTestGateway(t, front.URL, compat.Config{NarrowScopes: true}, func(c *Config) { c.Shared = newSharedCache(t, srv) })
	if status, _, _ := postForm(t, first.URL+"/oauth/token", ccForm("read:a")); status != http.StatusBadGateway {
		t.Fatalf("with a broken JWKS: status %d, want 502", status)
	}
	broken.Store(false)
	second := newTestGateway(t, front.URL, compat.Config{NarrowScopes: true}, func(c *Config) { c.Shared = newSharedCache(t, srv) })
	if status, _, answer := postForm(t, second.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
		t.Errorf("a new replica after the upstream recovered: status %d %v; the bad answer was shared", status, answer)
	}
}
