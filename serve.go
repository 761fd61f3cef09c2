package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
	logLevel, logFormat                 string
	configuration, clients, signingKey  string
	redis, adminListen, adminTokenFile  string
	narrowScopes                        bool
	ruleTimeout                         time.Duration
	ruleHeapMiB                         int
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
	fs.IntVar(&o.ruleHeapMiB, "rule-heap-mib", 0, "stop the longest-running extension when the process heap passes this many MiB (0: three quarters of GOMEMLIMIT, or 1024 without it; -1: never)")
	fs.StringVar(&o.redis, "redis", "", "Redis URL for the shared rule store and caches")
	fs.StringVar(&o.adminListen, "admin-listen", "", "address of the admin listener: metrics, health, rule store API (none by default)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "json (one object per line) or text")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the bearer token of the admin API (without it the API refuses every call)")
	return fs
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	// What serve starts in the background ends with it, whatever ends it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGHUP reloads the keys; caught from the start, so that it never
	// ends the process, with or without a key file.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var o serveOptions
	if err := parseFlags(serveFlags(&o), args, stderr); err != nil {
		return err
	}
	upstream, err := o.check()
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	redis.SetLogger(redisLogger{logger})

	local, err := compat.ReadSet(o.dirs())
	if err != nil {
		return err
	}
	st, client, err := openStore(o.redis)
	if err != nil {
		return err
	}
	if client != nil {
		defer client.Close()
	}
	base := compat.Config{Tenant: tenantOf(upstream), NarrowScopes: o.narrowScopes, Logger: logger}
	registry := prometheus.NewRegistry()
	if budget := heapBudget(o.ruleHeapMiB); budget > 0 {
		guard := rules.NewHeapGuard(budget)
		defer guard.Close()
		base.HeapGuard = guard
		registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "rulesgate_heap_guard_stops_total",
			Help: "Extension runs stopped because the process heap passed --rule-heap-mib.",
		}, func() float64 { return float64(guard.Stops()) }))
		logger.Info("extensions stop when the heap passes a budget", "budget_mib", budget>>20)
	}
	if client != nil {
		base.Cache = compat.NewRedisCache(client, rules.DefaultRedisPrefix)
	}
	var shared gateway.SharedCache
	if client != nil {
		shared = gateway.NewRedisSharedCache(client, rules.DefaultRedisPrefix)
	}
	build := buildPipeline(base, logger)
	localPipeline, err := build(local)
	if err != nil {
		return err
	}
	keys, err := loadKeys(o.signingKey, logger)
	if err != nil {
		return err
	}
	adminToken, err := readToken(o.adminTokenFile)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	gw, err := newGateway(ctx, gateway.Config{
		Upstream: upstream, PublicURL: publicURL(o.publicURL, ln), Issuer: o.issuer,
		Keys: keys, RuleTimeout: o.ruleTimeout, Logger: logger, Registry: registry,
		Admin: &gateway.Admin{Store: st, Validate: validateSet, Token: adminToken}, Shared: shared,
	})
	if err != nil {
		return err
	}
	if err := startRules(ctx, gw, st, o.redis != "", local, localPipeline, build); err != nil {
		return err
	}
	if o.signingKey != "" {
		go watchKeys(ctx, gw, o.signingKey, keyCheckInterval, hup, logger)
	}
	return serveGateway(ctx, gw, ln, o.adminListen, logger)
}

// newLogger returns the structured logger the flags ask for.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: json or text", format)
}

// keyCheckInterval is how often serve looks whether the key file changed.
const keyCheckInterval = 5 * time.Second

// watchKeys reloads the key file on SIGHUP and when it changes (its size
// or modification time), until ctx ends. A file that cannot be read or
// parsed leaves the keys in use signing, with an error in the log.
func watchKeys(ctx context.Context, gw *gateway.Gateway, path string, every time.Duration, hup <-chan os.Signal, logger *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()

	stamp := func() string {
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		return fi.ModTime().String() + "/" + strconv.FormatInt(fi.Size(), 10)
	}
	last := stamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick.C:
			if now := stamp(); now == last || now == "" {
				continue
			}
		}
		last = stamp()
		ks, err := gateway.LoadKeySet(path)
		if err == nil {
			if !gw.Publishes(ks.Active.KeyID()) {
				// A key that signs before resource servers could fetch it:
				// `keys generate --force` on a live file, or two rotations
				// in a row. Tokens fail to verify until their caches renew.
				logger.Warn("the new active signing key was not published before; tokens it signs may not verify for a while",
					"active", ks.Active.KeyID())
			}
			err = gw.SetKeys(ks)
		}
		if err != nil {
			logger.Error("signing keys not reloaded; the keys in use stay", "cause", err.Error())
			continue
		}
		next := ""
		if ks.Next != nil {
			next = ks.Next.KeyID()
		}
		logger.Info("signing keys reloaded", "active", ks.Active.KeyID(), "next", next, "published", len(ks.Keys))
	}
}

// redisLogger sends go-redis' own messages (reconnects, pool trouble)
// to the structured log.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// readToken reads the admin bearer token from a file, "" for no file.
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --admin-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", usageErrorf("--admin-token-file: the token must have at least 16 characters")
	}
	return token, nil
}

// validateSet checks a rule set as a push must: its layout, and every
// file compiles and has its kind's shape, every document decodes.
func validateSet(ctx context.Context, set *rules.Set) error {
	if err := compat.CheckSet(set, false); err != nil {
		return err
	}
	cfg, err := compat.ConfigOf(set, new(rules.Cache), compat.Config{})
	if err != nil {
		return err
	}
	return compat.Validate(ctx, cfg)
}

// dirs names the rule set's parts the flags give.
func (o *serveOptions) dirs() compat.Dirs {
	return compat.Dirs{Rules: o.rulesDir, Hooks: o.hooksDir, Actions: o.actionsDir,
		ShadowActions: o.shadowActionsDir, Configuration: o.configuration, Clients: o.clients}
}

// buildPipeline returns the function that turns a rule set into a
// pipeline, compiling each distinct source once over the process's life.
func buildPipeline(base compat.Config, logger *slog.Logger) gateway.Build {
	// TODO(store): the cache keeps every distinct source compiled since
	// start; a replica that lives through thousands of pushes holds them
	// all. Dropping what no recent version uses would bound it.
	cache := new(rules.Cache)
	return func(set *rules.Set) (*compat.Pipeline, error) {
		cfg, err := compat.ConfigOf(set, cache, base)
		if err != nil {
			return nil, err
		}
		logger.Info("extensions compiled", "rules", len(cfg.Rules), "hooks", len(cfg.Hooks),
			"actions", len(cfg.Actions), "shadow_actions", len(cfg.ShadowActions))
		return compat.NewPipeline(cfg), nil
	}
}

// openStore opens the rule store: Redis when a URL is given, with its
// client, else memory and a nil client.
func openStore(redisURL string) (rules.Store, redis.UniversalClient, error) {
	if redisURL == "" {
		return rules.NewMemoryStore(), nil, nil
	}
	client, err := rules.NewRedisClient(redisURL)
	if err != nil {
		return nil, nil, usageErrorf("--redis: %v", err)
	}
	return rules.NewRedisStore(client, ""), client, nil
}

// syncInterval is how often a replica asks the store for the active
// version, in case a notice was lost.
const syncInterval = 5 * time.Second

// startRules gives the gateway its rule set and keeps it current.
//
// Without Redis, the set read from the directories is version 1 of a
// store in memory. With Redis, the directories (if any) serve until the
// store's active version loads, and whenever Redis has none; a replica
// with no directories and no Redis is not ready: it must not issue tokens
// without the rules it should run.
func startRules(ctx context.Context, gw *gateway.Gateway, st rules.Store, shared bool, local *rules.Set,
	localPipeline *compat.Pipeline, build gateway.Build) error {
	if !shared {
		v, err := st.Push(ctx, withNote(local, "read from the directories at start"), true)
		if err != nil {
			return err
		}
		gw.SetPipeline(localPipeline, strconv.FormatInt(v, 10))
	} else if hasFiles(local) {
		gw.SetPipeline(localPipeline, "")
	}
	gw.SyncOnce(ctx, st, build)
	go gw.SyncRules(ctx, st, build, syncInterval)
	return nil
}

func withNote(s *rules.Set, note string) *rules.Set {
	c := *s
	c.Note = note
	return &c
}

// hasFiles reports whether a set has extensions to run: documents alone
// (clients, configuration) are no rule set.
func hasFiles(s *rules.Set) bool {
	for _, files := range s.Files {
		if len(files) > 0 {
			return true
		}
	}
	return false
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
	if o.ruleHeapMiB < -1 {
		return nil, usageErrorf("--rule-heap-mib must be a number of MiB, 0 or -1")
	}
	return u, nil
}

// heapBudget returns the heap size past which extensions are stopped, in
// bytes, for --rule-heap-mib, or 0 for none. By default it is three
// quarters of GOMEMLIMIT: the garbage collector works harder near the
// limit, and what is left is the room to stop a run and collect what it
// held before the container's own limit.
func heapBudget(mib int) uint64 {
	switch {
	case mib > 0:
		return uint64(mib) << 20
	case mib < 0:
		return 0
	}
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
		return uint64(limit) / 4 * 3
	}
	return 1 << 30
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
