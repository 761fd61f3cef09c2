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
	// Configuration is handed to rules as the configuration global. Nil is
	// an empty table.
	Configuration map[string]any
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
}

// Pipeline runs one tenant's extensions on a token, in Auth0's order, and
// applies Auth0's guards to the result. It is safe for concurrent use.
type Pipeline struct {
	cfg    Config
	engine *rules.Engine
}

// NewPipeline returns a pipeline for cfg.
func NewPipeline(cfg Config) *Pipeline {
	engine := rules.NewEngine(rules.Options{
		Limits: cfg.Limits,
		Logger: cfg.Logger,
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
	return &Pipeline{cfg: cfg, engine: engine}
}

// Run runs the extensions on tx. It returns a *Denial when an extension
// refused the token, an error for any other failure (a Lua error, the
// deadline of ctx, a rule that never called back), or the guarded result.
func (p *Pipeline) Run(ctx context.Context, tx *Transaction) (*Result, error) {
	scopes := tx.GrantedScopes
	if p.cfg.NarrowScopes && len(tx.RequestedScopes) > 0 {
		scopes = intersect(tx.RequestedScopes, tx.GrantedScopes)
	}
	var claims map[string]any

	if len(p.cfg.Rules) > 0 {
		err := p.engine.Run(ctx, func(s *rules.State) error {
			var err error
			scopes, claims, err = p.runRules(s, tx, scopes)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return guard(tx.GrantedScopes, scopes, claims)
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
