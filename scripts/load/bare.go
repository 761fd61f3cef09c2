package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"

	"github.com/go-jose/go-jose/v4"
)

// runBareProxy serves the baseline rulesgate is held to: an
// httputil.ReverseProxy that verifies the issuer's RS256 token against its
// JWKS, fetched once, and re-signs the same claims with ES256. No rules, no
// guards, no logs, no metrics.
func runBareProxy(upstream, listen string) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	keys, err := fetchJWKS(upstream + "/.well-known/jwks.json")
	if err != nil {
		return err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}

	// The gateway keeps as many idle upstream connections; the default
	// transport's two would have the baseline dial for most requests.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(res *http.Response) error {
			return resign(res, keys, signer)
		},
	}
	return http.ListenAndServe(listen, rp)
}

// resign replaces the answer's access_token with the same claims signed by
// the proxy.
func resign(res *http.Response, keys *jose.JSONWebKeySet, signer jose.Signer) error {
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		return err
	}
	raw, _ := answer["access_token"].(string)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	found := keys.Key(jws.Signatures[0].Header.KeyID)
	if len(found) == 0 {
		return errors.New("unknown kid")
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return err
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		return err
	}
	if answer["access_token"], err = signed.CompactSerialize(); err != nil {
		return err
	}

	out, err := json.Marshal(answer)
	if err != nil {
		return err
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// fetchJWKS reads a JWK set.
func fetchJWKS(u string) (*jose.JSONWebKeySet, error) {
	res, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	return &set, nil
}
