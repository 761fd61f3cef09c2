package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// lockedBuffer is a log sink the shadow goroutines and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records with the given message.
func (b *lockedBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestGateway_ShadowActions runs the example narrowing rule live and two
// shadow actions beside it: one faithful migration, one that keeps a scope
// the rule drops. The answers are the live pipeline's; every mismatch is
// logged with the request id and counted against the action that caused it.
func TestGateway_ShadowActions(t *testing.T) {
	live, err := rules.LoadFS(os.DirFS("../examples/rules"), ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	shadow := compileRules(t,
		"10-narrow.lua", `return { onExecuteCredentialsExchange = function(event, api)
			local wanted = {}
			for s in string.gmatch(event.request.body.scope or "", "%S+") do wanted[s] = true end
			if next(wanted) == nil then return end
			local kept = {}
			for _, s in ipairs(event.transaction.target_scopes) do
				if wanted[s] then kept[#kept + 1] = s end
			end
			api.transaction.setTargetScopes(kept)
		end }`,
		"20-tenant.lua", `return { onExecuteCredentialsExchange = function(event, api)
			local tenant = event.client.metadata.tenant
			if tenant ~= nil then
				api.accessToken.setCustomClaim(event.secrets.CLAIM_NAMESPACE .. "tenant", tenant)
			end
			if event.client.metadata.suspended == "true" then
				api.access.deny("invalid_request", "client " .. event.client.client_id .. " is suspended")
			end
			if event.client.client_id == "sloppy" then
				api.transaction.addTargetScope("write:a") -- the bug a shadow run must catch
			end
		end }`)

	up := newFakeIssuer(t, "/oauth/token")
	logs := &lockedBuffer{}
	gw := newTestGateway(t, up.URL, compat.Config{
		Rules: live, ShadowActions: shadow, NarrowScopes: true,
		Configuration: map[string]any{"CLAIM_NAMESPACE": "https://rulesgate.dev/"},
		Clients: map[string]compat.Client{
			"m2m":       {Metadata: map[string]string{"tenant": "acme"}},
			"sloppy":    {Metadata: map[string]string{"tenant": "initech"}},
			"suspended": {Metadata: map[string]string{"suspended": "true"}},
		},
	}, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })

	send := func(client, requestID string) (int, map[string]any) {
		up.set(func(f *fakeIssuer) { f.claims["azp"], f.claims["sub"] = client, client+"@clients" })
		form := ccForm("read:a")
		form.Set("client_id", client)
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", requestID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		return resp.StatusCode, answer
	}

	// The faithful path: same scopes, same claim, same denial.
	if status, answer := send("m2m", "req-match"); status != 200 || answer["scope"] != "read:a" {
		t.Fatalf("m2m: got %d %v, want 200 with read:a", status, answer)
	}
	if status, answer := send("suspended", "req-deny"); status != 403 || answer["error"] != "unauthorized" {
		t.Fatalf("suspended: got %d %v, want the live rule's 403 unauthorized", status, answer)
	}
	// The bug: the answer is still the live one.
	if status, answer := send("sloppy", "req-sloppy"); status != 200 || answer["scope"] != "read:a" {
		t.Fatalf("sloppy: got %d %v, want the live answer, 200 with read:a", status, answer)
	}
	gw.shadowRuns.Wait()

	if got := testutil.ToFloat64(gw.metrics.shadowRuns.WithLabelValues("match")); got != 2 {
		t.Errorf("shadow runs that matched: got %v, want 2 (m2m, and suspended: unauthorized ↔ invalid_request)", got)
	}
	if got := testutil.ToFloat64(gw.metrics.shadowRuns.WithLabelValues("mismatch")); got != 1 {
		t.Errorf("shadow runs that differed: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(gw.metrics.shadowDiffs.WithLabelValues("20-tenant.lua", "scopes")); got != 1 {
		t.Errorf("scope mismatches counted against 20-tenant.lua: got %v, want 1", got)
	}

	recs := logs.records(t, "shadow mismatch")
	if len(recs) != 1 {
		t.Fatalf("shadow mismatch log lines: got %d, want 1: %v", len(recs), recs)
	}
	want := map[string]any{keyRequestID: "req-sloppy", keyClientID: "sloppy", keyField: "scopes",
		keyAction: "20-tenant.lua", keyLive: `["read:a"]`, keyShadow: `["read:a","write:a"]`}
	for k, v := range want {
		if recs[0][k] != v {
			t.Errorf("log %s: got %v, want %v", k, recs[0][k], v)
		}
	}
}

// TestGateway_ShadowSkippedWhenBusy: shadow runs never queue behind live
// traffic; past maxShadowRuns in flight they are skipped and counted.
func TestGateway_ShadowSkippedWhenBusy(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true,
		ShadowActions: compileRules(t, "10-noop.lua", `return { onExecuteCredentialsExchange = function() end }`)})
	for range maxShadowRuns {
		gw.shadowSlots <- struct{}{} // every slot taken
	}
	if status, _, _ := postForm(t, gw.URL+"/oauth/token", ccForm("read:a")); status != 200 {
		t.Fatalf("status: got %d, want 200", status)
	}
	if got := testutil.ToFloat64(gw.metrics.shadowRuns.WithLabelValues("skipped")); got != 1 {
		t.Errorf("skipped shadow runs: got %v, want 1", got)
	}
}
