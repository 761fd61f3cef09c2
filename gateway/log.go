package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/rulesgate/rulesgate/compat"
)

// Log keys, fixed so that log queries keep working across releases.
const (
	keyOutcome      = "outcome"
	keyClientID     = "client_id"
	keyAudience     = "audience"
	keyScopesBefore = "scopes_before"
	keyScopesAfter  = "scopes_after"
	keyDropped      = "dropped"
	keyStatus       = "status"
	keyCause        = "cause"
	keyPath         = "path"
	keyRequestID    = "request_id"
	keyVersion      = "version"
	keyTimings      = "timings_us"
	keyDuration     = "duration_ms"
)

// record counts and logs the end of a token request. It never logs a
// secret or a token: only names, scopes and outcomes.
func (g *Gateway) record(treq *tokenRequest, outcome string, granted []string, res *compat.Result, attrs ...slog.Attr) {
	g.metrics.requests.WithLabelValues(outcome).Inc()
	if treq != nil && !treq.start.IsZero() {
		d := time.Since(treq.start)
		g.metrics.requestTime.WithLabelValues(outcome).Observe(d.Seconds())
		attrs = append(attrs, slog.Float64(keyDuration, float64(d.Microseconds())/1000))
	}
	if res != nil {
		g.countDropped(treq, res)
		for _, t := range res.Timings {
			g.metrics.extensionTime.WithLabelValues(t.Extension).Observe(t.Duration.Seconds())
		}
	}
	if !g.logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}

	attrs = append(attrs, slog.String(keyOutcome, outcome))
	if treq != nil {
		attrs = append(attrs, slog.String(keyRequestID, treq.requestID),
			slog.String(keyClientID, treq.clientID), slog.String(keyAudience, treq.audience))
	}
	if res != nil {
		attrs = append(attrs, slog.Any(keyScopesBefore, granted), slog.Any(keyScopesAfter, res.Scopes))
		if len(res.Timings) > 0 {
			timings := make([]slog.Attr, len(res.Timings))
			for i, t := range res.Timings {
				timings[i] = slog.Int64(t.Extension, t.Duration.Microseconds())
			}
			attrs = append(attrs, slog.Attr{Key: keyTimings, Value: slog.GroupValue(timings...)})
		}
	}
	g.logger.LogAttrs(context.Background(), slog.LevelInfo, "token request", attrs...)
}

// countDropped counts and logs what Auth0's guards dropped from a result.
func (g *Gateway) countDropped(treq *tokenRequest, res *compat.Result) {
	if len(res.DroppedScopes) > 0 {
		g.metrics.scopesDropped.Add(float64(len(res.DroppedScopes)))
		g.logger.Warn("scopes outside the grant dropped", slog.String(keyClientID, treq.clientID), slog.Any(keyDropped, res.DroppedScopes))
	}
	if len(res.DroppedClaims) > 0 {
		g.metrics.claimsDropped.Add(float64(len(res.DroppedClaims)))
		g.logger.Warn("restricted claims dropped", slog.String(keyClientID, treq.clientID), slog.Any(keyDropped, res.DroppedClaims))
	}
}

// fail answers a token request with an OAuth error, logging its cause.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, treq *tokenRequest, e *oauthError) {
	attrs := []slog.Attr{slog.Int(keyStatus, e.status)}
	if e.cause != nil {
		attrs = append(attrs, slog.String(keyCause, e.cause.Error()))
	}
	g.record(treq, e.outcome, nil, nil, attrs...)
	writeOAuthError(w, e.status, e.code, e.description)
}
