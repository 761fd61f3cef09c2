package compat

import (
	"context"
	"os"
	"testing"

	"github.com/rulesgate/rulesgate/rules"
)

// BenchmarkPipeline_FiveRules measures five realistic rules on one
// client-credentials token, the Lua engine's share of a token request: the
// three example rules, and the two of testdata/bench.
func BenchmarkPipeline_FiveRules(b *testing.B) {
	progs := benchRules(b, "..")
	p := NewPipeline(Config{
		Rules:         progs,
		Configuration: map[string]any{"CLAIM_NAMESPACE": "https://example.com/", "ENVIRONMENT": "prod"},
		Clients:       map[string]Client{"m2m": {Name: "Billing", Metadata: map[string]string{"tenant": "acme"}}},
		NarrowScopes:  true,
	})
	tx := benchTransaction()
	ctx := context.Background()

	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Run(ctx, tx)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Scopes) != 1 || len(res.Claims) != 3 {
			b.Fatalf("got %v %v", res.Scopes, res.Claims)
		}
	}
}

// benchRules loads the five benchmark rules, from the repository root at
// root.
func benchRules(b *testing.B, root string) []*rules.Program {
	var progs []*rules.Program
	for _, dir := range []string{"examples/rules", "compat/testdata/bench"} {
		p, err := rules.LoadFS(os.DirFS(root+"/"+dir), ".", nil)
		if err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p...)
	}
	if len(progs) != 5 {
		b.Fatalf("got %d rules, want 5", len(progs))
	}
	return progs
}

// benchTransaction is the client-credentials request the benchmarks use.
func benchTransaction() *Transaction {
	return &Transaction{
		ClientID: "m2m", GrantType: "client_credentials", Audience: "https://api.example.com",
		RequestedScopes: []string{"read:claims"},
		GrantedScopes:   []string{"read:claims", "write:claims", "delete:claims", "admin:everything"},
		Request: Request{IP: "10.0.0.7", Hostname: "gateway.example", UserAgent: "bench/1.0",
			Query: map[string]any{},
			Body: map[string]any{"grant_type": "client_credentials", "client_id": "m2m",
				"audience": "https://api.example.com", "scope": "read:claims"}},
	}
}

// BenchmarkPipeline_FiveRulesParallel is the same run from 16 goroutines
// per core, as a loaded gateway calls it: states must be reused, not built.
func BenchmarkPipeline_FiveRulesParallel(b *testing.B) {
	p := NewPipeline(Config{
		Rules:         benchRules(b, ".."),
		Configuration: map[string]any{"CLAIM_NAMESPACE": "https://example.com/", "ENVIRONMENT": "prod"},
		Clients:       map[string]Client{"m2m": {Name: "Billing", Metadata: map[string]string{"tenant": "acme"}}},
		NarrowScopes:  true,
	})
	tx := benchTransaction()

	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Run(context.Background(), tx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
