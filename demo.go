package main

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/gateway"
	"github.com/rulesgate/rulesgate/gateway/devissuer"
	"github.com/rulesgate/rulesgate/rules"
)

// examples holds the example rules, clients and configuration the demo runs.
//
//go:embed examples
var examples embed.FS

// The demo's API and clients.
const (
	demoAudience = "https://api.example.com"
	demoScope    = "read:claims"
)

var demoClients = map[string]devissuer.Client{
	"demo-m2m": {Secret: "demo-secret", Grants: map[string][]string{
		demoAudience: {"read:claims", "write:claims", "delete:claims", "admin:everything"},
	}},
	"suspended-m2m": {Secret: "suspended-secret", Grants: map[string][]string{
		demoAudience: {"read:claims"},
	}},
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fset.String("listen", ":8080", "address the gateway listens on")
	if err := parseFlags(fset, args, stderr); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	issuerURL, err := startDevIssuer(ctx)
	if err != nil {
		return err
	}
	pipeline, err := examplePipeline(logger)
	if err != nil {
		return err
	}
	keys, err := loadKeys("", logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	gwURL := publicURL("", ln)
	gw, err := gateway.New(ctx, gateway.Config{
		Upstream: issuerURL, PublicURL: gwURL, Pipeline: pipeline, Keys: keys, Logger: logger,
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- serveGateway(ctx, gw, ln, "", logger) }()
	if err := showDemo(ctx, stdout, issuerURL.String(), gwURL); err != nil {
		return err
	}
	return <-done
}

// startDevIssuer serves the Auth0-like development issuer on loopback
// until ctx is done.
func startDevIssuer(ctx context.Context) (*url.URL, error) {
	is, err := devissuer.New(demoClients)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen dev issuer: %w", err)
	}
	go gateway.Serve(ctx, ln, is.Handler())
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}, nil
}

// examplePipeline loads the repository's example rules, clients and
// configuration, built into the binary.
func examplePipeline(logger *slog.Logger) (*compat.Pipeline, error) {
	progs, err := rules.LoadFS(examples, "examples/rules", nil)
	if err != nil {
		return nil, err
	}
	var clients map[string]compat.Client
	var configuration map[string]any
	for name, v := range map[string]any{"examples/clients.json": &clients, "examples/configuration.json": &configuration} {
		data, err := fs.ReadFile(examples, name)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, v); err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return compat.NewPipeline(compat.Config{
		Rules: progs, Clients: clients, Configuration: configuration, NarrowScopes: true, Logger: logger,
	}), nil
}

// showDemo asks for a token as a client would, once from the issuer and
// once through the gateway, and prints the two side by side.
func showDemo(ctx context.Context, w io.Writer, issuerURL, gwURL string) error {
	direct, err := requestToken(ctx, issuerURL, "demo-m2m", "demo-secret")
	if err != nil {
		return fmt.Errorf("token from the issuer: %w", err)
	}
	via, err := requestToken(ctx, gwURL, "demo-m2m", "demo-secret")
	if err != nil {
		return fmt.Errorf("token through the gateway: %w", err)
	}
	denied, err := requestToken(ctx, gwURL, "suspended-m2m", "suspended-secret")
	if err != nil {
		return fmt.Errorf("token through the gateway: %w", err)
	}

	fmt.Fprintf(w, "rulesgate demo\n\n")
	fmt.Fprintf(w, "  issuer (behaves like Auth0)  %s\n  gateway                      %s\n\n", issuerURL, gwURL)
	fmt.Fprintf(w, "client demo-m2m asks for scope %q on %s:\n\n", demoScope, demoAudience)
	fmt.Fprintf(w, "  %-30s %s\n", "straight from the issuer", "through rulesgate")
	left, right := direct.scopes(), via.scopes()
	for i := 0; i < max(len(left), len(right)); i++ {
		fmt.Fprintf(w, "  %-30s %s\n", at(left, i), at(right, i))
	}
	fmt.Fprintf(w, "\nclaims the rules added: %s = %v\n", "https://rulesgate.dev/tenant", via.claims["https://rulesgate.dev/tenant"])
	fmt.Fprintf(w, "client suspended-m2m through rulesgate: %d %s (%s)\n", denied.status, denied.answer["error"], denied.answer["error_description"])

	fmt.Fprintf(w, "\nTry it:\n  curl -s %s/oauth/token -d grant_type=client_credentials -d client_id=demo-m2m \\\n"+
		"    -d client_secret=demo-secret -d audience=%s -d scope=%s\n", gwURL, demoAudience, demoScope)
	fmt.Fprintf(w, "Keys: %s/.well-known/jwks.json\nDiscovery: %s/.well-known/openid-configuration\n", gwURL, gwURL)
	fmt.Fprintf(w, "Serving until Ctrl-C.\n")
	return nil
}

// demoAnswer is a token endpoint answer, with the access token's claims
// decoded (not verified: this is a display).
type demoAnswer struct {
	status int
	answer map[string]any
	claims map[string]any
}

func (a *demoAnswer) scopes() []string {
	s, _ := a.claims["scope"].(string)
	return strings.Fields(s)
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func requestToken(ctx context.Context, base, id, secret string) (*demoAnswer, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
		"client_secret": {secret}, "audience": {demoAudience}, "scope": {demoScope}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	a := &demoAnswer{status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&a.answer); err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if tok, ok := a.answer["access_token"].(string); ok {
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			json.Unmarshal(payload, &a.claims)
		}
	}
	return a, nil
}
