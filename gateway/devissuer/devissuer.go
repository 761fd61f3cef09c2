// Package devissuer is a small OAuth 2.0 server for development and tests
// that behaves as Auth0 does for machine-to-machine tokens: it returns
// every scope granted to the client for the audience, whatever the request
// asks for. It is not for production.
package devissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TokenLifetime is how long tokens live, as Auth0's default for APIs.
const TokenLifetime = 24 * time.Hour

// Client is a client registered with the issuer.
type Client struct {
	// Secret authenticates the client.
	Secret string
	// Grants maps an audience to the scopes granted to the client for it.
	Grants map[string][]string
}

// Issuer is a development issuer. Its iss is the URL it is reached at, with
// a trailing slash as Auth0 writes it.
type Issuer struct {
	clients map[string]Client
	key     jose.JSONWebKey
	signer  jose.Signer
	now     func() time.Time
}

// New returns an issuer for clients, with a new RSA key.
func New(clients map[string]Client) (*Issuer, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("new dev issuer: %w", err)
	}
	key := jose.JSONWebKey{Key: priv, KeyID: rand.Text()[:16], Algorithm: string(jose.RS256), Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("new dev issuer: %w", err)
	}
	return &Issuer{clients: clients, key: key, signer: signer, now: time.Now}, nil
}

// Handler serves discovery, the JWKS and /oauth/token.
func (is *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.serveDiscovery)
	mux.HandleFunc("GET /.well-known/jwks.json", is.serveJWKS)
	mux.HandleFunc("POST /oauth/token", is.serveToken)
	return mux
}

func issuerOf(r *http.Request) string { return "http://" + r.Host + "/" }

func (is *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := issuerOf(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"token_endpoint":                        iss + "oauth/token",
		"jwks_uri":                              iss + ".well-known/jwks.json",
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (is *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{is.key.Public()}})
}

// serveToken issues a client-credentials token with every scope granted
// to the client for the audience, as Auth0 does.
func (is *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	params, err := readParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, secret := params.Get("client_id"), params.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(pass)
	}
	if params.Get("grant_type") != "client_credentials" {
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	client, ok := is.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1 {
		writeError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}

	audience := params.Get("audience")
	if audience == "" {
		// Auth0 does: no audience, no JWT; an opaque token instead.
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": rand.Text(), "token_type": "Bearer", "expires_in": int(TokenLifetime.Seconds()),
		})
		return
	}
	scopes, ok := client.Grants[audience]
	if !ok {
		writeError(w, http.StatusForbidden, "access_denied", fmt.Sprintf("Client %q is not authorized to access %q.", id, audience))
		return
	}

	now := is.now()
	claims := map[string]any{
		"iss": issuerOf(r), "sub": id + "@clients", "aud": audience, "azp": id,
		"iat": now.Unix(), "exp": now.Add(TokenLifetime).Unix(),
		"scope": strings.Join(scopes, " "), "gty": "client-credentials",
	}
	payload, _ := json.Marshal(claims)
	jws, err := is.signer.Sign(payload)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	token, _ := jws.CompactSerialize()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "scope": strings.Join(scopes, " "),
		"expires_in": int(TokenLifetime.Seconds()), "token_type": "Bearer",
	})
}

// readParams reads a form or JSON body, as Auth0 accepts both.
func readParams(r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, fmt.Errorf("the body is not a JSON object")
		}
		params := url.Values{}
		for k, v := range body {
			if s, ok := v.(string); ok {
				params.Set(k, s)
			}
		}
		return params, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("the body is not a form")
	}
	return r.PostForm, nil
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
