package gateway

import (
	"encoding/json"
	"net/http"
)

// Outcomes of a token request, as logged and counted.
const (
	outcomeIssued       = "issued"
	outcomeOpaque       = "opaque"
	outcomeDenied       = "denied"
	outcomeBadRequest   = "bad_request"
	outcomeUpstream     = "upstream_error"
	outcomeVerification = "verification_failure"
	outcomeRuleError    = "rule_error"
	outcomeTimeout      = "timeout"
	outcomeNotReady     = "not_ready"
)

// oauthError is an answer to the client in the shape of RFC 6749 §5.2. The
// status, code and description are what the client sees; cause is what
// only the log sees.
type oauthError struct {
	status      int
	code        string
	description string
	outcome     string
	cause       error
}

func (e *oauthError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.description + ": " + e.cause.Error()
	}
	return e.code + ": " + e.description
}

func (e *oauthError) Unwrap() error { return e.cause }

// writeOAuthError writes an OAuth JSON error. It never carries a token.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")
	h.Del("Content-Length")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
