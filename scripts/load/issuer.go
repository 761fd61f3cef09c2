package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// startIssuer starts an Auth0-shaped issuer on loopback that answers every
// token request with the same RS256 token, minted once, granting four
// scopes. Discovery and JWKS are served as a real issuer serves them.
func startIssuer() (*httptest.Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "load-1", Algorithm: string(jose.RS256), Use: "sig"}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}

	var answer []byte
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	issuer := srv.URL + "/"
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"issuer": issuer, "token_endpoint": srv.URL + "/oauth/token",
			"jwks_uri": srv.URL + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})

	scope := "read:claims write:claims delete:claims admin:everything"
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": issuer, "sub": "demo-m2m@clients", "aud": "https://api.example.com", "azp": "demo-m2m",
		"iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(), "scope": scope, "gty": "client-credentials",
	})
	jws, err := signer.Sign(payload)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("mint token: %w", err)
	}
	token, _ := jws.CompactSerialize()
	answer, _ = json.Marshal(map[string]any{"access_token": token, "scope": scope,
		"expires_in": 7200, "token_type": "Bearer"})
	return srv, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
