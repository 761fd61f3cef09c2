package compat

import (
	"context"
	"log/slog"

	"github.com/rulesgate/rulesgate/rules"
)

// Config is what a Pipeline runs and with which settings.
type Config struct {
	// Rules run in order, in Auth0's Rules shape. None means the token is
	// only narrowed and guarded.
	Rules []*rules.Program
	// Hooks run in order after the rules, in Auth0's client-credentials-
	// exchange hook shape.
	Hooks []*rules.Program
	// Actions run in order after the hooks, in Auth0's credentials-exchange
	// action shape.
	Actions []*rules.Program
	// ShadowActions are a second action set, run by Shadow on the same
	// transaction in place of the whole pipeline, to compare with it.
	ShadowActions []*rules.Program
	// Configuration is handed to rules as the configuration global, to
	// hooks as context.webtask.secrets and to actions as event.secrets.
	// Nil is an empty table.
	Configuration map[string]any
	// Tenant names the tenant, for hooks' client.tenant and actions'
	// event.tenant.id.
	Tenant string
	// Cache backs the actions' api.cache; nil means a MemoryCache.
	Cache Cache
	// Clients gives a client's name and metadata by client id. A client not
	// in it has an empty name and no metadata.
	Clients map[string]Client
	// NarrowScopes starts the token's scope at requested ∩ granted when the
	// request names scopes, instead of at everything granted.
	NarrowScopes bool
	// Limits bound each Lua state; zero fields take the engine's defaults.
	Limits rules.Limits
	// Logger receives what extensions print; nil means slog.Default().
	Logger *slog.Logger
	// HeapGuard, if not nil, stops the longest run when the process's
	// heap passes its budget (rules.HeapGuard).
	HeapGuard *rules.HeapGuard
}

// Pipeline runs one tenant's extensions on a token, in Auth0's order, and
// applies Auth0's guards to the result. It is safe for concurrent use.
type Pipeline struct {
	cfg    Config
	engine *rules.Engine
	cache  Cache
	// shadowEngine runs the shadow actions on states of their own: what
	// a shadow file sets up at file level, or in global, never reaches a
	// live run.
	shadowEngine *rules.Engine
	// shadowCache backs the shadow actions' api.cache, so that they never
	// change what the live actions read.
	shadowCache Cache
}

// NewPipeline returns a pipeline for cfg.
func NewPipeline(cfg Config) *Pipeline {
	cache := cfg.Cache
	if cache == nil {
		cache = NewMemoryCache()
	}
	p := &Pipeline{cfg: cfg, engine: newEngine(cfg), cache: cache}
	if len(cfg.ShadowActions) > 0 {
		p.shadowEngine, p.shadowCache = newEngine(cfg), NewMemoryCache()
	}
	return p
}

// newEngine returns an engine whose states carry the globals of Auth0's
// shapes.
func newEngine(cfg Config) *rules.Engine {
	return rules.NewEngine(rules.Options{
		Limits:    cfg.Limits,
		Logger:    cfg.Logger,
		HeapGuard: cfg.HeapGuard,
		Setup: func(s *rules.State) {
			l := s.Lua()
			installErrors(l, s.SetGlobal)
			// Auth0 does: global lives as long as the container that runs
			// the rules; here, as long as the pooled state.
			s.SetGlobal("global", l.NewTable())
			// Auth0 does: configuration is read-only.
			s.SetGlobal("configuration", s.Frozen(configuration(cfg.Configuration)))
		},
	})
}

// Run runs the extensions on tx: rules, then hooks, then actions, all on
// one Lua state under the deadline of ctx. It returns a *Denial when an
// extension refused the token, an error for any other failure (a Lua
// error, the deadline, a rule that never called back), or the guarded
// result.
func (p *Pipeline) Run(ctx context.Context, tx *Transaction) (*Result, error) {
	res, _, err := p.run(ctx, p.engine, tx, p.cfg.Rules, p.cfg.Hooks, p.cfg.Actions, p.cache)
	return res, err
}

// run runs the given extensions on engine from the transaction's starting
// scopes, the actions with cache, and also returns the actions' record,
// for Shadow.
func (p *Pipeline) run(ctx context.Context, engine *rules.Engine, tx *Transaction, ruleSet, hooks, actions []*rules.Program, cache Cache) (*Result, *actionRun, error) {
	run := &actionRun{ctx: ctx, cache: cache, scopes: p.startScopes(tx)}
	if len(ruleSet)+len(hooks)+len(actions) > 0 {
		err := engine.Run(ctx, func(s *rules.State) error {
			var err error
			if len(ruleSet) > 0 {
				if run.scopes, run.claims, err = p.runRules(s, tx, run.scopes, &run.timings); err != nil {
					return err
				}
			}
			if len(hooks) > 0 {
				if run.scopes, run.claims, err = p.runHooks(s, tx, run.scopes, run.claims, &run.timings); err != nil {
					return err
				}
			}
			if len(actions) > 0 {
				return p.runActions(s, tx, actions, run)
			}
			return nil
		})
		if err != nil {
			return nil, run, err
		}
	}
	res, err := guard(tx.GrantedScopes, run.scopes, run.claims)
	if res != nil {
		res.Timings = run.timings
	}
	return res, run, err
}

// startScopes is where a token's scopes start: everything granted, or
// requested ∩ granted when narrowing is on and the request names scopes.
func (p *Pipeline) startScopes(tx *Transaction) []string {
	if p.cfg.NarrowScopes && len(tx.RequestedScopes) > 0 {
		return intersect(tx.RequestedScopes, tx.GrantedScopes)
	}
	return tx.GrantedScopes
}

// client returns what is known of the transaction's client.
func (p *Pipeline) client(id string) Client { return p.cfg.Clients[id] }

// configuration returns the settings, an empty object for none.
func configuration(c map[string]any) map[string]any {
	if c == nil {
		return map[string]any{}
	}
	return c
}
