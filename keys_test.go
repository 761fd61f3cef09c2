package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/gateway"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
)

func keysCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(t.Context(), append([]string{"keys"}, args...), &out, &out)
	return code, out.String()
}

// TestRun_KeysGenerateAndRotate: keys generate writes a private set only
// its owner reads, with a thumbprint kid, and refuses to overwrite; rotate
// publishes a next key, then makes it active and retires the old one.
func TestRun_KeysGenerateAndRotate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	if code, out := keysCmd(t, "generate", "--alg", "EdDSA", "--out", file); code != 0 || !strings.Contains(out, "active EdDSA key") {
		t.Fatalf("generate: %d %s", code, out)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if code, _ := keysCmd(t, "generate", "--out", file); code != 1 {
		t.Errorf("generate over an existing file: exit %d, want 1", code)
	}
	if code, _ := keysCmd(t, "generate", "--alg", "HS256", "--out", file+"2"); code != 2 {
		t.Errorf("generate --alg HS256: exit %d, want 2", code)
	}

	var set struct {
		Keys  []jose.JSONWebKey `json:"keys"`
		Roles struct {
			Active, Next string
			Retired      map[string]string
		} `json:"rulesgate"`
	}
	read := func() {
		data, _ := os.ReadFile(file)
		set.Roles.Next, set.Roles.Retired = "", nil
		if err := json.Unmarshal(data, &set); err != nil {
			t.Fatal(err)
		}
	}
	read()
	first := set.Roles.Active
	if len(set.Keys) != 1 || set.Keys[0].KeyID != first || set.Keys[0].IsPublic() {
		t.Fatalf("generated set: %+v", set)
	}
	if code, out := keysCmd(t, "rotate", "--file", file); code != 0 || !strings.Contains(out, "next ") {
		t.Fatalf("rotate: %d %s", code, out)
	}
	read()
	next := set.Roles.Next
	if set.Roles.Active != first || next == "" || len(set.Keys) != 2 {
		t.Fatalf("after one rotation: %+v", set.Roles)
	}
	if code, out := keysCmd(t, "rotate", "--file", file); code != 0 || !strings.Contains(out, "retired "+first) {
		t.Fatalf("rotate: %d %s", code, out)
	}
	read()
	if set.Roles.Active != next || set.Roles.Retired[first] == "" || len(set.Keys) != 3 {
		t.Errorf("after two rotations: %+v", set.Roles)
	}
}

// TestRun_ServeReloadsKeys: serve reloads the key set on SIGHUP: the JWKS
// publishes the new next key at once, and after the next rotation tokens
// are signed by it.
func TestRun_ServeReloadsKeys(t *testing.T) {
	hup := make(chan os.Signal, 1) // the test process must not die of its own SIGHUP
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	is, err := devissuer.New(map[string]devissuer.Client{"m2m": {Secret: "keys-secret",
		Grants: map[string][]string{"https://api.example.com": {"read:a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(is.Handler())
	defer up.Close()
	file := filepath.Join(t.TempDir(), "keys.json")
	if code, out := keysCmd(t, "generate", "--out", file); code != 0 {
		t.Fatalf("generate: %s", out)
	}

	addr := freeAddr(t)
	var stderr syncBuffer
	ctx, cancel := contextWithCancel(t)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--upstream", up.URL, "--listen", addr, "--signing-key", file}, nil, &stderr)
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, &stderr, "gateway listening")

	published := func() int {
		resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&set)
		return len(set.Keys)
	}
	signedBy := func() string {
		resp, err := http.PostForm("http://"+addr+"/oauth/token", map[string][]string{"grant_type": {"client_credentials"},
			"client_id": {"m2m"}, "client_secret": {"keys-secret"}, "audience": {"https://api.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		jws, err := jose.ParseSigned(answer["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	reload := func(want int) {
		t.Helper()
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		for deadline := time.Now().Add(5 * time.Second); published() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP the JWKS has %d keys, want %d", published(), want)
			}
		}
	}

	first := signedBy()
	keysCmd(t, "rotate", "--file", file)
	reload(2)
	if got := signedBy(); got != first {
		t.Errorf("the next key signs before its rotation: %s", got)
	}
	keysCmd(t, "rotate", "--file", file)
	reload(3)
	if got := signedBy(); got == first {
		t.Errorf("after the second rotation the retired key still signs")
	}
	if !strings.Contains(stderr.String(), "signing keys reloaded") {
		t.Errorf("no reload in the log")
	}
}

// TestWatchKeys_FileChange: serve reloads the key set when the file
// changes, without a signal; a file that cannot be parsed leaves the keys
// in use.
func TestWatchKeys_FileChange(t *testing.T) {
	is, err := devissuer.New(map[string]devissuer.Client{})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(is.Handler())
	defer up.Close()
	file := filepath.Join(t.TempDir(), "keys.json")
	if code, out := keysCmd(t, "generate", "--out", file); code != 0 {
		t.Fatalf("generate: %s", out)
	}
	ks, err := gateway.LoadKeySet(file)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(up.URL)
	gw, err := gateway.New(t.Context(), gateway.Config{Upstream: u, PublicURL: "http://gw.example", Keys: ks,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	go watchKeys(t.Context(), gw, file, 20*time.Millisecond, make(chan os.Signal), slog.New(slog.NewTextHandler(&logs, nil)))

	time.Sleep(100 * time.Millisecond)   // watchKeys has read the file's stamp
	keysCmd(t, "rotate", "--file", file) // publishes a next key
	next := ""
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if reloaded, _ := gateway.LoadKeySet(file); reloaded != nil && reloaded.Next != nil {
			next = reloaded.Next.KeyID()
		}
		if next != "" && gw.Publishes(next) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed key file was not reloaded")
		}
	}

	os.WriteFile(file, []byte("not a key set"), 0o600)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "signing keys not reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a broken key file was not reported")
		}
	}
	if !gw.Publishes(next) {
		t.Error("a broken key file replaced the keys in use")
	}
}
