// Package gateway is rulesgate's HTTP side. It intercepts the upstream
// issuer's token endpoint, verifies the token the upstream issued against
// the upstream JWKS, runs the extensions of package compat on it, re-signs
// it with the gateway's own key, and answers the client. It also publishes
// the gateway's JWKS and discovery document, passes every other path
// through to the upstream unchanged, and serves health and metrics on a
// separate admin listener.
package gateway
