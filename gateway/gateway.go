package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rulesgate/rulesgate/compat"
)

// DefaultRuleTimeout bounds the whole extension pipeline of one request
// when Config.RuleTimeout is zero.
const DefaultRuleTimeout = 5 * time.Second

// Config is what a Gateway needs. Upstream, PublicURL and Keys are
// required.
type Config struct {
	// Upstream is the base URL of the issuer in front of which the gateway
	// stands.
	Upstream *url.URL
	// PublicURL is the gateway's external base URL, as clients reach it.
	PublicURL string
	// Issuer is the iss of re-signed tokens; empty means PublicURL + "/".
	Issuer string
	// Pipeline runs the extensions on each token. Nil leaves the gateway
	// not ready, refusing token requests, until SetPipeline or SyncRules
	// gives it one.
	Pipeline *compat.Pipeline
	// Keys sign tokens and fill the JWKS.
	Keys *KeySet
	// RuleTimeout bounds the extensions of one request; zero means
	// DefaultRuleTimeout.
	RuleTimeout time.Duration
	// Logger receives the gateway's logs; nil means slog.Default().
	Logger *slog.Logger
	// Client makes every upstream call; nil means one with timeouts on
	// dial, TLS, headers and the whole call.
	Client *http.Client
	// Registry receives the gateway's metrics; nil means a new registry.
	Registry *prometheus.Registry
	// Admin adds the rule store API to the admin listener; nil leaves it
	// out.
	Admin *Admin
	// Shared shares the upstream's discovery document and JWKS with the
	// other replicas; nil means this replica fetches alone.
	Shared SharedCache
}

// Gateway is rulesgate's HTTP side for one upstream.
type Gateway struct {
	upstream    *Upstream
	client      *http.Client
	verifier    *Verifier
	pipeline    atomic.Pointer[loadedPipeline]
	store       atomic.Pointer[storeStatus]
	loadErr     atomic.Pointer[loadError]
	keys        atomic.Pointer[keyState]
	issuer      string
	publicURL   string
	ruleTimeout time.Duration
	logger      *slog.Logger
	registry    *prometheus.Registry
	metrics     *metrics
	admin       *Admin

	discovery   []byte
	tokenProxy  *httputil.ReverseProxy
	buffers     *bufferPool
	shadowSlots chan struct{}  // one token per shadow run in flight
	shadowRuns  sync.WaitGroup // the shadow runs in flight, for tests
	passThrough *httputil.ReverseProxy
	handler     http.Handler
}

// New discovers the upstream and returns a gateway ready to serve.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Upstream == nil || cfg.PublicURL == "" || cfg.Keys == nil {
		return nil, errors.New("new gateway: Upstream, PublicURL and Keys are required")
	}
	g := &Gateway{
		client:      cfg.Client,
		issuer:      cfg.Issuer,
		publicURL:   strings.TrimSuffix(cfg.PublicURL, "/"),
		ruleTimeout: cfg.RuleTimeout,
		logger:      cfg.Logger,
		registry:    cfg.Registry,
		admin:       cfg.Admin,
	}
	if g.client == nil {
		g.client = httpClient()
	}
	if g.issuer == "" {
		g.issuer = g.publicURL + "/"
	}
	if g.ruleTimeout == 0 {
		g.ruleTimeout = DefaultRuleTimeout
	}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if g.registry == nil {
		g.registry = prometheus.NewRegistry()
	}
	g.metrics = newMetrics(g.registry)
	if cfg.Pipeline != nil {
		g.SetPipeline(cfg.Pipeline, "")
	}

	up, err := g.discover(ctx, cfg.Upstream, cfg.Shared)
	if err != nil {
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	g.upstream = up
	if up.Document == nil {
		g.logger.Warn("upstream has no discovery document; using Auth0's paths",
			"token_endpoint", up.TokenURL.String(), "jwks_uri", up.JWKSURL.String())
	}
	g.verifier = NewVerifier(g.client, up.JWKSURL, up.Issuer, g.logger, func(result string) {
		g.metrics.jwksFetches.WithLabelValues(result).Inc()
	})
	if cfg.Shared != nil {
		g.verifier.Share(cfg.Shared)
	}

	if g.discovery, err = g.discoveryDocument(); err != nil {
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	if err := g.SetKeys(cfg.Keys); err != nil {
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	g.buffers = newBufferPool()
	g.shadowSlots = make(chan struct{}, maxShadowRuns)
	g.tokenProxy = g.newTokenProxy()
	g.passThrough = g.newPassThrough()
	g.handler = g.routes()
	return g, nil
}

// Handler returns the handler for the client listener.
func (g *Gateway) Handler() http.Handler { return g.handler }

// TokenPath returns the path on which the gateway intercepts token requests:
// the path of the upstream's token endpoint.
func (g *Gateway) TokenPath() string { return g.upstream.TokenURL.EscapedPath() }

// Issuer returns the iss of the tokens the gateway signs.
func (g *Gateway) Issuer() string { return g.issuer }

func (g *Gateway) routes() http.Handler {
	r := mux.NewRouter().SkipClean(true) // passed-through paths stay as sent
	r.Path("/.well-known/jwks.json").HandlerFunc(g.serveJWKS)
	r.Path("/.well-known/openid-configuration").HandlerFunc(g.serveDocument(g.discovery))
	r.MatcherFunc(g.isTokenPath).HandlerFunc(g.serveToken)
	r.PathPrefix("/").Handler(g.passThrough)
	return r
}

// isTokenPath matches the token path and the variants of it an upstream
// might route to the same endpoint (other case, a trailing slash, dot or
// double slash segments), so that none reaches the upstream past the rules.
func (g *Gateway) isTokenPath(r *http.Request, _ *mux.RouteMatch) bool {
	p := path.Clean("/" + r.URL.Path)
	return strings.EqualFold(p, path.Clean(g.upstream.TokenURL.Path))
}

// newPassThrough returns the proxy for every path the gateway does not
// handle itself: sent to the upstream's origin with the path unchanged.
func (g *Gateway) newPassThrough() *httputil.ReverseProxy {
	origin := &url.URL{Scheme: g.upstream.Base.Scheme, Host: g.upstream.Base.Host}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(origin)
			pr.SetXForwarded()
		},
		Transport:  g.client.Transport,
		BufferPool: g.buffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e := upstreamFailure(err)
			g.logger.Warn("pass-through failed", slog.String(keyPath, r.URL.Path), slog.String(keyCause, err.Error()))
			writeOAuthError(w, e.status, e.code, e.description)
		},
	}
}

// AdminHandler returns the handler for the admin listener: Prometheus
// metrics, liveness, readiness and, with Config.Admin, the rule store API.
// It must never be served to clients.
func (g *Gateway) AdminHandler() http.Handler {
	r := mux.NewRouter()
	r.Path("/metrics").Handler(promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	}
	r.Path("/healthz").HandlerFunc(ok)
	// A Gateway exists only once discovery and keys are loaded; it is
	// ready once it has a rule set too.
	r.Path("/readyz").HandlerFunc(g.serveReady)
	if g.admin != nil {
		g.adminRoutes(r, g.admin)
	}
	return r
}
