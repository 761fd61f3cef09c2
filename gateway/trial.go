package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rulesgate/rulesgate/compat"
)

// Trial is a recorded token request and the claims of the token the
// upstream issued for it: what `rulesgate rules test` runs a rule set on,
// as Auth0's "try this rule" did, without any server.
type Trial struct {
	// Request holds the token request's parameters, as the client sent
	// them in its form body.
	Request map[string]string `json:"request"`
	// UpstreamClaims are the claims of the upstream's token.
	UpstreamClaims map[string]any `json:"upstream_claims"`
}

// TrialResult is what the client would get: the re-signed token's claims,
// or an OAuth error with, for the operator, its cause.
type TrialResult struct {
	Status      int            `json:"status"`
	Claims      map[string]any `json:"claims,omitempty"`
	Error       string         `json:"error,omitempty"`
	Description string         `json:"error_description,omitempty"`
	Cause       string         `json:"cause,omitempty"`
}

// Try runs p on a trial as the token endpoint would after verifying the
// upstream token: the same request parsing, scopes, guards and claim
// rewriting, with iss set to issuer. Nothing is signed.
func Try(ctx context.Context, p *compat.Pipeline, issuer string, ruleTimeout time.Duration, t Trial) TrialResult {
	form := url.Values{}
	for k, v := range t.Request {
		form.Set(k, v)
	}
	body := []byte(form.Encode())
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://trial/token", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "127.0.0.1:1"
	treq, err := parseTokenRequest(r, body)
	if err != nil {
		return failed(&oauthError{status: http.StatusBadRequest, code: "invalid_request", description: err.Error()})
	}
	treq.pipeline = &loadedPipeline{Pipeline: p}

	raw, err := json.Marshal(t.UpstreamClaims)
	if err != nil {
		return failed(&oauthError{status: http.StatusBadGateway, code: "server_error", description: "the upstream claims could not be read", cause: err})
	}
	claims, err := decodeClaims(raw)
	if err != nil {
		return failed(&oauthError{status: http.StatusBadGateway, code: "server_error", description: "the upstream claims could not be read", cause: err})
	}
	if ruleTimeout <= 0 {
		ruleTimeout = DefaultRuleTimeout
	}
	g := &Gateway{issuer: issuer, ruleTimeout: ruleTimeout}
	payload, _, _, oerr := g.transform(ctx, treq, claims, false)
	if oerr != nil {
		return failed(oerr)
	}
	res := TrialResult{Status: http.StatusOK}
	if err := json.Unmarshal(payload, &res.Claims); err != nil {
		return failed(&oauthError{status: http.StatusInternalServerError, code: "server_error", description: "the token could not be built", cause: err})
	}
	return res
}

func failed(e *oauthError) TrialResult {
	res := TrialResult{Status: e.status, Error: e.code, Description: e.description}
	if e.cause != nil {
		res.Cause = e.cause.Error()
	}
	return res
}
