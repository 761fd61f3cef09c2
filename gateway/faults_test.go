package gateway

import (
	"context"
	"github.com/go-jose/go-jose/v4"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rulesgate/rulesgate/compat"
)

// TestFaults_UpstreamSlow: an upstream slower than the gateway's timeout
// gives 504 server_error, counted, and never a hang.
func TestFaults_UpstreamSlow(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	up.set(func(f *fakeIssuer) {
		f.answer = func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}
	})
	transport := NewUpstreamTransport()
	transport.ResponseHeaderTimeout = 200 * time.Millisecond
	gw := newTestGateway(t, up.URL, compat.Config{}, func(c *Config) {
		c.Client = &http.Client{Transport: transport, Timeout: 2 * time.Second}
	})
	start := time.Now()
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != http.StatusGatewayTimeout || answer["error"] != "server_error" || answer["access_token"] != nil {
		t.Errorf("slow upstream: got %d %v, want 504 server_error", status, answer)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the answer took %v", d)
	}
	if got := testutil.ToFloat64(gw.metrics.requests.WithLabelValues(outcomeUpstream)); got != 1 {
		t.Errorf("upstream_error count: %v, want 1", got)
	}
}

// TestFaults_JWKSDown: with the upstream's JWKS endpoint failing, a token
// cannot be verified: 502, counted as a verification failure and a failed
// JWKS fetch, and no token.
func TestFaults_JWKSDown(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	up.jwksDown.Store(true)
	gw := newTestGateway(t, up.URL, compat.Config{})
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != http.StatusBadGateway || answer["access_token"] != nil {
		t.Errorf("JWKS down: got %d %v, want 502 and no token", status, answer)
	}
	if testutil.ToFloat64(gw.metrics.requests.WithLabelValues(outcomeVerification)) != 1 ||
		testutil.ToFloat64(gw.metrics.jwksFetches.WithLabelValues("error")) != 1 {
		t.Errorf("the failure is not counted")
	}
}

// TestFaults_UpstreamRotatesMidRun: the upstream starts signing with a new
// key it publishes. Within the refetch limit (10 s after the last fetch)
// the gateway refuses the token (502) rather than skip verification; past
// it, it fetches the JWKS once and verifies.
func TestFaults_UpstreamRotatesMidRun(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
	var skew atomic.Int64
	gw.verifier.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	if status, _, _ := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	rotated := testKey(t, "upstream-2")
	up.set(func(f *fakeIssuer) {
		f.jwks = []jose.JSONWebKey{f.key.Public(), rotated.Public()}
		f.key = rotated
	})
	if status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusBadGateway || answer["access_token"] != nil {
		t.Errorf("within the refetch limit: got %d %v, want 502 without a token", status, answer)
	}
	skew.Store(int64(jwksMinRefetch + time.Second))
	before := up.jwksCalls.Load()
	status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if status != http.StatusOK {
		t.Fatalf("past the refetch limit: got %d %v", status, answer)
	}
	if up.jwksCalls.Load()-before != 1 {
		t.Errorf("JWKS fetches for the rotation: %d, want 1", up.jwksCalls.Load()-before)
	}
	verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
}

// raiseFileLimit lets the test hold n connections, both ends in this
// process.
func raiseFileLimit(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n {
		lim.Cur = min(n, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < n {
		t.Fatalf("the open-file limit is %d; the test needs %d (raise the hard limit)", lim.Cur, n)
	}
}

// TestFaults_ManyConnections: 2,000 concurrent connections, idle, with
// half a header, or with a slow body, cost the gateway a bounded amount of
// memory, and a normal client is still served at once.
func TestFaults_ManyConnections(t *testing.T) {
	const conns = 2000
	raiseFileLimit(t, 3*conns)
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, gw.Handler()) }()
	defer func() { cancel(); <-served }()
	addr := ln.Addr().String()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		switch i % 3 {
		case 1: // slowloris: half a request line and headers
			io.WriteString(c, "POST /oauth/token HTTP/1.1\r\nHost: gw\r\n")
		case 2: // a slow body: headers done, a few bytes of a long body
			io.WriteString(c, "POST /oauth/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=cl")
		}
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 100<<20 {
		t.Errorf("2,000 connections grew the heap by %d MB", grew>>20)
	}

	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/oauth/token", strings.NewReader(ccForm("read:a").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || time.Since(start) > 2*time.Second {
		t.Errorf("with 2,000 connections open: %d after %v", resp.StatusCode, time.Since(start))
	}
}

// TestFaults_ClientGoesAway: a client that disconnects mid-body never
// reaches the upstream, and the next client is served.
func TestFaults_ClientGoesAway(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /oauth/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\ngrant_type=client_cred")
	c.Close()
	time.Sleep(100 * time.Millisecond)
	if n := up.tokenCalls.Load(); n != 0 {
		t.Errorf("a half-sent request reached the upstream (%d calls)", n)
	}
	if status, _, _ := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != http.StatusOK {
		t.Errorf("the next client: %d", status)
	}
}
