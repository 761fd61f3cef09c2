package compat

import "time"

// Transaction is what the extensions of one token request see: who asked,
// for what, and what the upstream issuer granted.
type Transaction struct {
	// ClientID is the client the upstream issued the token to.
	ClientID string
	// GrantType is the OAuth grant_type of the request (RFC 6749 §4).
	GrantType string
	// Audience is the API the token is for, as requested.
	Audience string
	// RequestedScopes are the scopes the request named; nil when it named none.
	RequestedScopes []string
	// GrantedScopes are the scopes in the upstream token. Final scopes never
	// leave this set.
	GrantedScopes []string
	// Request describes the HTTP request, without client secrets.
	Request Request
	// CorrelationID identifies the transaction for actions, as
	// event.transaction.correlation_id; the gateway makes it up.
	CorrelationID string
}

// Request is the part of the client's HTTP request extensions may read.
type Request struct {
	// IP is the client's address as the gateway saw it.
	IP string
	// Hostname is the host the client connected to.
	Hostname string
	// UserAgent is the client's User-Agent header.
	UserAgent string
	// Language is the client's preferred language, from Accept-Language.
	Language string
	// Query holds the URL query parameters.
	Query map[string]any
	// Body holds the body parameters, without client_secret and
	// client_assertion.
	Body map[string]any
}

// Result is what the extensions made of a token, after Auth0's guards.
type Result struct {
	// Scopes are the final scopes, a subset of the granted ones, in the
	// order the extensions left them.
	Scopes []string
	// Claims are the custom claims to add to the token.
	Claims map[string]any
	// DroppedScopes are scopes the extensions asked for outside the grant.
	DroppedScopes []string
	// DroppedClaims are restricted claims the extensions tried to set.
	DroppedClaims []string
	// Timings are how long each extension ran, in the order they ran.
	Timings []Timing
}

// Timing is how long one extension ran on one token.
type Timing struct {
	Extension string
	Duration  time.Duration
}

// Client is what the gateway knows of a client beyond its id, as Auth0's
// client record has it.
type Client struct {
	// Name is the client's display name; empty when unknown.
	Name string `json:"name"`
	// Metadata is the client's metadata, string to string as in Auth0.
	Metadata map[string]string `json:"metadata"`
}

// protocol names the grant the way Auth0's context.protocol does.
func protocol(grantType string) string {
	switch grantType {
	case "client_credentials":
		return "oauth2-client-credentials"
	case "refresh_token":
		return "oauth2-refresh-token"
	case "password", "http://auth0.com/oauth/grant-type/password-realm":
		return "oauth2-resource-owner"
	case "urn:ietf:params:oauth:grant-type:device_code":
		return "oauth2-device-code"
	case "authorization_code":
		return "oidc-basic-profile"
	}
	return grantType
}
