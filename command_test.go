package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRun_CommandLineErrors: a bad flag, a missing required one or an
// unknown command exits with code 2 and says why.
func TestRun_CommandLineErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage"},
		{"unknown command", []string{"serf"}, `unknown command "serf"`},
		{"unknown flag", []string{"serve", "--upstrem", "http://x"}, "flag provided but not defined: -upstrem"},
		{"missing upstream", []string{"serve"}, "--upstream (or RULESGATE_UPSTREAM) is required"},
		{"upstream not a URL", []string{"serve", "--upstream", "tenant.auth0.com"}, "is not an http(s) URL"},
		{"bad duration", []string{"serve", "--upstream", "http://x", "--rule-timeout", "soon"}, "invalid value"},
		{"zero timeout", []string{"serve", "--upstream", "http://x", "--rule-timeout", "0s"}, "must be positive"},
		{"bad heap budget", []string{"serve", "--upstream", "http://x", "--rule-heap-mib", "-2"}, "--rule-heap-mib"},
		{"stray argument", []string{"serve", "--upstream", "http://x", "extra"}, `unexpected argument "extra"`},
		{"redis URL", []string{"serve", "--upstream", "http://x", "--redis", "http://localhost:6379"}, "--redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(t.Context(), tt.args, io.Discard, &stderr)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestRun_EnvironmentVariables: every serve flag reads RULESGATE_*; a bad
// value there is a usage error, and the command line wins over it.
func TestRun_EnvironmentVariables(t *testing.T) {
	t.Setenv("RULESGATE_RULE_TIMEOUT", "never")
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--upstream", "http://x"}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "RULESGATE_RULE_TIMEOUT") {
		t.Errorf("bad env value: got %d %q, want 2 naming RULESGATE_RULE_TIMEOUT", code, stderr.String())
	}

	// The flag wins: the bad env value is never read.
	t.Setenv("RULESGATE_UPSTREAM", "not a url")
	stderr.Reset()
	code := run(t.Context(), []string{"serve", "--rule-timeout", "1s", "--upstream", "ftp://x"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `"ftp://x"`) {
		t.Errorf("flag over env: got %d %q, want the flag's value refused", code, stderr.String())
	}

	// The env supplies the required flag.
	stderr.Reset()
	code = run(t.Context(), []string{"serve", "--rule-timeout", "1s"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `"not a url"`) {
		t.Errorf("env upstream: got %d %q, want RULESGATE_UPSTREAM's value used", code, stderr.String())
	}
}

// TestRun_BrokenRuleRefused: a rule that does not compile stops serve
// before it listens, naming the file and line.
func TestRun_BrokenRuleRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-broken.lua"), []byte("return function(user, context, callback)\n  if then\nend\n"), 0o644)
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--upstream", "http://127.0.0.1:1", "--rules", dir}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "10-broken.lua") || !strings.Contains(stderr.String(), "line:2") {
		t.Errorf("got %d %q, want 1 naming 10-broken.lua line 2", code, stderr.String())
	}
}

// syncBuffer is a buffer the command writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls out until it contains s, for at most ten seconds.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(out.String(), s) {
			return
		}
	}
	t.Fatalf("output never contained %q:\n%s", s, out.String())
}

// TestRun_Demo: `rulesgate demo` shows the issuer's token with every
// granted scope beside the gateway's with only the requested one, the
// claim the example rule adds and the suspended client refused, then keeps
// serving until stopped.
func TestRun_Demo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	addr := freeAddr(t)
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo", "--listen", addr}, &stdout, &stderr) }()

	waitFor(t, &stdout, "Serving until Ctrl-C.")
	out := stdout.String()
	for _, want := range []string{
		"straight from the issuer       through rulesgate",
		"read:claims                    read:claims",
		"write:claims                   \n",
		"admin:everything",
		"https://rulesgate.dev/tenant = acme",
		"suspended-m2m through rulesgate: 403 unauthorized (client suspended-m2m is suspended)",
		"curl -s http://" + addr + "/oauth/token",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Still serving: the JWKS answers.
	if resp, err := http.Get("http://" + addr + "/.well-known/jwks.json"); err != nil {
		t.Errorf("demo stopped serving: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Errorf("demo JWKS: got status %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code after stop: got %d, want 0; stderr %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
