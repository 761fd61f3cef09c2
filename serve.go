package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/gateway"
	"github.com/rulesgate/rulesgate/rules"
	"golang.org/x/sync/errgroup"
)

// serveOptions are the flags of `rulesgate serve`, as ../shared/CONTRACT.md
// lists them.
type serveOptions struct {
	listen, upstream, publicURL, issuer string
	rulesDir, hooksDir, actionsDir      string
	shadowActionsDir                    string
	configuration, clients, signingKey  string
	redis, adminListen                  string
	narrowScopes                        bool
	ruleTimeout                         time.Duration
}

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", ":8080", "address clients connect to")
	fs.StringVar(&o.upstream, "upstream", "", "base URL of the issuer (an Auth0 tenant, Hydra, a Keycloak realm); required")
	fs.StringVar(&o.publicURL, "public-url", "", "the gateway's external base URL (default http:// + listen address)")
	fs.StringVar(&o.issuer, "issuer", "", "iss of re-signed tokens (default public URL + /)")
	fs.StringVar(&o.rulesDir, "rules", "", "directory of Lua rules, run in file-name order")
	fs.StringVar(&o.hooksDir, "hooks", "", "directory of Lua client-credentials-exchange hooks")
	fs.StringVar(&o.actionsDir, "actions", "", "directory of Lua credentials-exchange actions")
	fs.StringVar(&o.shadowActionsDir, "shadow-actions", "", "directory of Lua actions run beside the live pipeline, whose differences are logged and counted")
	fs.StringVar(&o.configuration, "configuration", "", "JSON object handed to rules as configuration")
	fs.StringVar(&o.clients, "clients", "", `JSON object: client_id -> {"name": ..., "metadata": {...}}`)
	fs.StringVar(&o.signingKey, "signing-key", "", "private key(s): PEM (RSA, EC P-256, Ed25519) or a JWK set (default a new key each start)")
	fs.BoolVar(&o.narrowScopes, "narrow-scopes", true, "start each token's scope at requested ∩ granted when the request names scopes")
	fs.DurationVar(&o.ruleTimeout, "rule-timeout", gateway.DefaultRuleTimeout, "limit for the whole extension pipeline of one request")
	fs.StringVar(&o.redis, "redis", "", "Redis URL for the shared rule store and caches")
	fs.StringVar(&o.adminListen, "admin-listen", "", "address of the admin listener: metrics, health (none by default)")
	return fs
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var o serveOptions
	if err := parseFlags(serveFlags(&o), args, stderr); err != nil {
		return err
	}
	upstream, err := o.check()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ext, err := loadExtensions(&o)
	if err != nil {
		return err
	}
	var configuration map[string]any
	var clients map[string]compat.Client
	if err := readJSONFile(o.configuration, &configuration); err != nil {
		return fmt.Errorf("read --configuration: %w", err)
	}
	if err := readJSONFile(o.clients, &clients); err != nil {
		return fmt.Errorf("read --clients: %w", err)
	}
	keys, err := loadKeys(o.signingKey, logger)
	if err != nil {
		return err
	}
	pipeline := compat.NewPipeline(compat.Config{
		Rules: ext.rules, Hooks: ext.hooks, Actions: ext.actions, ShadowActions: ext.shadow,
		Configuration: configuration, Clients: clients, Tenant: tenantOf(upstream),
		NarrowScopes: o.narrowScopes, Logger: logger,
	})
	logger.Info("extensions loaded", "rules", len(ext.rules), "hooks", len(ext.hooks),
		"actions", len(ext.actions), "shadow_actions", len(ext.shadow))

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	gw, err := newGateway(ctx, gateway.Config{
		Upstream: upstream, PublicURL: publicURL(o.publicURL, ln), Issuer: o.issuer,
		Pipeline: pipeline, Keys: keys, RuleTimeout: o.ruleTimeout, Logger: logger,
	})
	if err != nil {
		return err
	}
	return serveGateway(ctx, gw, ln, o.adminListen, logger)
}

// extensions are the Lua programs of each shape, each set in file-name
// order.
type extensions struct {
	rules, hooks, actions, shadow []*rules.Program
}

// loadExtensions compiles the directories the flags name; an unset flag is
// an empty set.
func loadExtensions(o *serveOptions) (extensions, error) {
	var ext extensions
	for _, set := range []struct {
		flag, dir string
		progs     *[]*rules.Program
	}{
		{"--rules", o.rulesDir, &ext.rules},
		{"--hooks", o.hooksDir, &ext.hooks},
		{"--actions", o.actionsDir, &ext.actions},
		{"--shadow-actions", o.shadowActionsDir, &ext.shadow},
	} {
		if set.dir == "" {
			continue
		}
		progs, err := rules.LoadFS(os.DirFS(set.dir), ".", nil)
		if err != nil {
			return ext, fmt.Errorf("load %s: %w", set.flag, err)
		}
		*set.progs = progs
	}
	return ext, nil
}

// tenantOf names the tenant for hooks and actions: the first label of an
// Auth0 host (TENANT.auth0.com, TENANT.eu.auth0.com), else the whole host.
func tenantOf(upstream *url.URL) string {
	host := upstream.Hostname()
	if name, _, ok := strings.Cut(host, "."); ok && strings.HasSuffix(host, ".auth0.com") {
		return name
	}
	return host
}

// check validates the options that need more than their type, and returns
// the upstream URL.
func (o *serveOptions) check() (*url.URL, error) {
	if o.upstream == "" {
		return nil, usageErrorf("--upstream (or RULESGATE_UPSTREAM) is required")
	}
	u, err := url.Parse(o.upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--upstream %q is not an http(s) URL", o.upstream)
	}
	if o.ruleTimeout <= 0 {
		return nil, usageErrorf("--rule-timeout must be positive")
	}
	if o.redis != "" {
		return nil, usageErrorf("--redis is not available in this version of rulesgate yet")
	}
	return u, nil
}

// publicURL returns the configured URL, or http:// and the address the
// listener is bound to, with localhost for an unspecified host.
func publicURL(configured string, ln net.Listener) string {
	if configured != "" {
		return configured
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// readJSONFile decodes the JSON file at path into v; an empty path leaves
// v as it is.
func readJSONFile(path string, v any) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// loadKeys loads the signing keys, or makes an ES256 key for this run.
func loadKeys(path string, logger *slog.Logger) (*gateway.KeySet, error) {
	if path != "" {
		return gateway.LoadKeySet(path)
	}
	ks, err := gateway.GenerateKeySet(jose.ES256)
	if err != nil {
		return nil, err
	}
	logger.Warn("no --signing-key: signing with a new ES256 key; tokens will not verify after a restart",
		"kid", ks.Active.KeyID())
	return ks, nil
}

// newGateway builds the gateway, trying the upstream's discovery a few
// times: an upstream that starts beside the gateway may not answer yet.
func newGateway(ctx context.Context, cfg gateway.Config) (*gateway.Gateway, error) {
	var err error
	for attempt, wait := 1, 500*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		var gw *gateway.Gateway
		if gw, err = gateway.New(ctx, cfg); err == nil {
			return gw, nil
		}
		if attempt == 5 {
			return nil, err
		}
		cfg.Logger.Warn("upstream not ready; trying again", "cause", err.Error(), "wait", wait)
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// serveGateway serves the gateway on ln, and its admin handler on
// adminAddr when one is given, until ctx is done.
func serveGateway(ctx context.Context, gw *gateway.Gateway, ln net.Listener, adminAddr string, logger *slog.Logger) error {
	var aln net.Listener
	if adminAddr != "" {
		var err error
		if aln, err = net.Listen("tcp", adminAddr); err != nil {
			return fmt.Errorf("listen admin: %w", err)
		}
		logger.Info("admin listening", "addr", aln.Addr().String())
	}

	g, ctx := errgroup.WithContext(ctx)
	logger.Info("gateway listening", "addr", ln.Addr().String(), "token_path", gw.TokenPath(), "issuer", gw.Issuer())
	g.Go(func() error { return gateway.Serve(ctx, ln, gw.Handler()) })
	if aln != nil {
		g.Go(func() error { return gateway.Serve(ctx, aln, gw.AdminHandler()) })
	}
	err := g.Wait()
	gw.Close() // the last shadow reports
	return err
}
