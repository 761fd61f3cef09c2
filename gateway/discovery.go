package gateway

import (
	"fmt"
	"maps"
	"net/http"
)

// discoveryDocument builds the gateway's discovery document: the upstream's,
// with the issuer, JWKS and token endpoint pointing at the gateway (OpenID
// Connect Discovery 1.0 §3). Without an upstream document it names just
// those three.
func (g *Gateway) discoveryDocument() ([]byte, error) {
	doc := maps.Clone(g.upstream.Document)
	if doc == nil {
		doc = map[string]any{"grant_types_supported": []string{"client_credentials"}}
	}
	doc["issuer"] = g.issuer
	doc["jwks_uri"] = g.publicURL + "/.well-known/jwks.json"
	doc["token_endpoint"] = g.publicURL + g.TokenPath()
	b, err := encodeJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("encode discovery document: %w", err)
	}
	return b, nil
}

// serveDocument serves a fixed JSON document, cacheable for five minutes.
func (g *Gateway) serveDocument(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "this document is read with GET")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(doc)
	}
}
