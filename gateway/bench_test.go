package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// BenchmarkTokenPath compares the whole token path inside the gateway
// (parse the upstream answer, verify RS256, five rules, sign ES256, encode
// the answer) with the bare go-jose verify and sign of the same token, in
// the same run. The gateway's budget is 1.5x the bare cost.
func BenchmarkTokenPath(b *testing.B) {
	// Measured with the collector's target `rulesgate serve` runs with,
	// for both sides alike.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(DefaultGCPercent))
	}
	up := newFakeIssuer(b, "/oauth/token")
	up.set(func(f *fakeIssuer) {
		f.claims["scope"] = "read:claims write:claims delete:claims admin:everything"
	})
	raw := up.sign(b, up.nextClaims())
	answer, _ := json.Marshal(map[string]any{"access_token": raw, "token_type": "Bearer",
		"expires_in": 86400, "scope": "read:claims write:claims delete:claims admin:everything"})

	// The five rules of compat's benchmark: the examples and two more.
	var progs []*rules.Program
	for _, dir := range []string{"../examples/rules", "../compat/testdata/bench"} {
		p, err := rules.LoadFS(os.DirFS(dir), ".", nil)
		if err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p...)
	}
	gw := newTestGateway(b, up.URL, compat.Config{
		Rules:         progs,
		Configuration: map[string]any{"CLAIM_NAMESPACE": "https://example.com/", "ENVIRONMENT": "prod"},
		Clients:       map[string]compat.Client{"m2m": {Name: "Billing", Metadata: map[string]string{"tenant": "acme"}}},
		NarrowScopes:  true,
	})
	treq := &tokenRequest{clientID: "m2m", grantType: "client_credentials", audience: "https://api.example.com",
		scopes: []string{"read:claims"}, ip: "10.0.0.7", host: "gateway.example", userAgent: "bench/1.0",
		query: map[string]any{}, body: map[string]any{"grant_type": "client_credentials", "client_id": "m2m",
			"audience": "https://api.example.com", "scope": "read:claims"}}
	treq.pipeline = gw.pipeline.Load()
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), tokenRequestKey{}, treq),
		http.MethodPost, up.URL+"/oauth/token", nil)

	pub := up.key.Public().Key
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: gw.keySet().Active.jwk}, nil)
	if err != nil {
		b.Fatal(err)
	}
	bare := func(b *testing.B) {
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			b.Fatal(err)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			b.Fatal(err)
		}
		out, err := signer.Sign(payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.CompactSerialize(); err != nil {
			b.Fatal(err)
		}
	}
	gateway := func(b *testing.B) {
		resp := &http.Response{StatusCode: http.StatusOK, Request: req,
			Header:        http.Header{"Content-Type": {"application/json"}},
			ContentLength: int64(len(answer)), Body: io.NopCloser(bytes.NewReader(answer))}
		if err := gw.rewriteTokenAnswer(resp); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}

	b.Run("bare-go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare(b)
		}
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			gateway(b)
		}
	})
	// The two, alternating in one loop, so that a machine that slows down
	// or speeds up during the run weighs on both alike; the metric is the
	// gateway's cost over the bare cost.
	b.Run("ratio", func(b *testing.B) {
		var tBare, tGateway time.Duration
		for b.Loop() {
			start := time.Now()
			bare(b)
			mid := time.Now()
			gateway(b)
			tBare, tGateway = tBare+mid.Sub(start), tGateway+time.Since(mid)
		}
		b.ReportMetric(float64(tGateway)/float64(tBare), "gateway/bare")
	})
}
