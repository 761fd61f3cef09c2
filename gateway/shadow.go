package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/rulesgate/rulesgate/compat"
)

// maxShadowRuns bounds the shadow runs in flight: a shadow set must never
// take the CPU the live traffic needs. Runs past it are skipped and counted.
const maxShadowRuns = 64

// Log keys of shadow reports.
const (
	keyField  = "field"
	keyClaim  = "claim"
	keyAction = "action"
	keyLive   = "live"
	keyShadow = "shadow"
)

// shadow runs the pipeline's shadow actions on tx in the background, after
// the live run, and logs and counts every difference under the request's
// id. It never changes the answer; the transaction is only read.
func (g *Gateway) shadow(p *compat.Pipeline, requestID string, tx *compat.Transaction, live *compat.Result, liveErr error) {
	if !p.HasShadow() {
		return
	}
	select {
	case g.shadowSlots <- struct{}{}:
	default:
		g.metrics.shadowRuns.WithLabelValues("skipped").Inc()
		return
	}
	g.shadowRuns.Go(func() {
		defer func() { <-g.shadowSlots }()
		ctx, cancel := context.WithTimeout(context.Background(), g.ruleTimeout)
		defer cancel()
		diffs, err := p.Shadow(ctx, tx, live, liveErr)
		g.reportShadow(requestID, tx, diffs, err)
	})
}

// Close waits for the shadow runs in flight, each bounded by the rule
// timeout, so that their reports are not lost at shutdown.
func (g *Gateway) Close() { g.shadowRuns.Wait() }

// reportShadow logs and counts the outcome of one shadow run.
func (g *Gateway) reportShadow(requestID string, tx *compat.Transaction, diffs []compat.Difference, err error) {
	switch {
	case errors.Is(err, compat.ErrNotCompared):
		g.metrics.shadowRuns.WithLabelValues("not_compared").Inc()
		return
	case err != nil:
		g.metrics.shadowRuns.WithLabelValues("error").Inc()
		g.logger.Warn("shadow run failed", slog.String(keyRequestID, requestID),
			slog.String(keyClientID, tx.ClientID), slog.String(keyCause, err.Error()))
		return
	case len(diffs) == 0:
		g.metrics.shadowRuns.WithLabelValues("match").Inc()
		return
	}
	g.metrics.shadowRuns.WithLabelValues("mismatch").Inc()
	for _, d := range diffs {
		action := d.Action
		if action == "" {
			action = "none"
		}
		g.metrics.shadowDiffs.WithLabelValues(action, d.Field).Inc()
		g.logger.Warn("shadow mismatch", slog.String(keyRequestID, requestID),
			slog.String(keyClientID, tx.ClientID), slog.String(keyField, d.Field), slog.String(keyClaim, d.Claim),
			slog.String(keyAction, action), slog.String(keyLive, d.Live), slog.String(keyShadow, d.Shadow))
	}
}
