package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// loadedPipeline is a pipeline with the rule set version it runs.
type loadedPipeline struct {
	*compat.Pipeline
	version string // the store's number, or "" for a set read from disk
	id      string // the set's ID in the store, "" for a set read from disk
}

// storeStatus is what the gateway last heard from its rule store.
type storeStatus struct {
	err  error
	when time.Time
}

// SetPipeline makes p the pipeline of every token request from now on;
// requests under way finish on the one they started with. version names
// the rule set, "" for one read from directories.
func (g *Gateway) SetPipeline(p *compat.Pipeline, version string) {
	g.setPipeline(p, rules.Ref{}, version)
}

func (g *Gateway) setPipeline(p *compat.Pipeline, ref rules.Ref, version string) {
	g.pipeline.Store(&loadedPipeline{Pipeline: p, version: version, id: ref.ID})
	n, err := strconv.ParseFloat(version, 64)
	if err != nil {
		n = 0
	}
	g.metrics.ruleVersion.Set(n)
	g.metrics.ruleSwaps.Inc()
}

// RuleVersion returns the version of the rule set in use, "" for one read
// from directories, and whether there is one.
func (g *Gateway) RuleVersion() (string, bool) {
	lp := g.pipeline.Load()
	if lp == nil {
		return "", false
	}
	return lp.version, true
}

// Build turns a stored rule set into a pipeline.
type Build func(*rules.Set) (*compat.Pipeline, error)

// SyncRules keeps the gateway on the active version of st until ctx ends:
// at once, on every activation the store announces, and every interval as
// a safety net against lost notices. A version is built once, off the
// request path, then swapped in whole. When the store cannot be reached
// or the version cannot be built, the gateway keeps serving the version
// it has, and says so in /readyz and the metrics.
func (g *Gateway) SyncRules(ctx context.Context, st rules.Store, build Build, interval time.Duration) {
	changes := st.Changes(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		g.SyncOnce(ctx, st, build)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// storeCallTimeout bounds one call to the rule store during a sync.
const storeCallTimeout = 2 * time.Second

// SyncOnce loads the store's active version if it is not the one in use.
func (g *Gateway) SyncOnce(ctx context.Context, st rules.Store, build Build) {
	cctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	ref, err := st.ActiveVersion(cctx)
	if errors.Is(err, rules.ErrNoActive) {
		g.setStoreStatus(nil)
		return // nothing pushed yet: keep what the gateway has
	}
	if err != nil {
		g.setStoreStatus(err)
		return
	}
	version := strconv.FormatInt(ref.Version, 10)
	if cur := g.pipeline.Load(); cur != nil && cur.version == version && (cur.id == "" || cur.id == ref.ID) {
		g.setStoreStatus(nil)
		return
	}
	set, err := st.Get(cctx, ref.Version)
	if err != nil {
		g.setStoreStatus(err)
		return
	}
	g.setStoreStatus(nil)

	p, err := build(set)
	if err != nil {
		g.loadErr.Store(&loadError{version: version, err: err})
		g.metrics.ruleLoadFails.Inc()
		g.logger.Error("rule set not loaded; the version in use stays", slog.String(keyVersion, version),
			slog.String(keyCause, err.Error()))
		return
	}
	g.loadErr.Store(nil)
	g.setPipeline(p, rules.Ref{Version: ref.Version, ID: set.ID}, version)
	g.logger.Info("rule set loaded", slog.String(keyVersion, version), slog.String("note", set.Note))
}

func (g *Gateway) setStoreStatus(err error) {
	now := &storeStatus{err: err, when: time.Now()}
	if prev := g.store.Load(); err != nil && prev != nil && prev.err != nil {
		now.when = prev.when // unreachable since the first failure
	}
	prev := g.store.Swap(now)
	if err != nil {
		g.metrics.storeUp.Set(0)
		if prev == nil || prev.err == nil {
			g.logger.Warn("rule store unreachable; serving the rule set in use", slog.String(keyCause, err.Error()))
		}
		return
	}
	g.metrics.storeUp.Set(1)
	if prev != nil && prev.err != nil {
		g.logger.Info("rule store reachable again")
	}
}

// loadError is a version the store named active that could not be built.
type loadError struct {
	version string
	err     error
}

// readiness is /readyz's answer.
type readiness struct {
	Ready       bool   `json:"ready"`
	RuleVersion string `json:"rule_version,omitempty"`
	RuleSource  string `json:"rule_source,omitempty"` // store or directories
	Store       string `json:"store,omitempty"`       // ok, or why not
	// LoadError names an active version this replica could not build,
	// while it serves the one it has.
	LoadError string `json:"load_error,omitempty"`
}

// serveReady answers 200 once the gateway has a rule set, 503 before.
// The detail says which version and whether the rule store answers: a
// replica cut off from Redis still serves the version it holds.
func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) {
	var r readiness
	if lp := g.pipeline.Load(); lp != nil {
		r.Ready, r.RuleVersion, r.RuleSource = true, lp.version, "store"
		if lp.version == "" {
			r.RuleSource = "directories"
		}
	}
	if st := g.store.Load(); st != nil {
		r.Store = "ok"
		if st.err != nil {
			r.Store = "unreachable since " + st.when.UTC().Format(time.RFC3339) + ": " + st.err.Error()
		}
	}
	if le := g.loadErr.Load(); le != nil {
		r.LoadError = "version " + le.version + ": " + le.err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	if !r.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(r)
}
