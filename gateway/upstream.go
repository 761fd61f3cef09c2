package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxDocumentSize bounds what the gateway reads of a discovery document,
// a JWKS or a token answer from the upstream.
const maxDocumentSize = 1 << 20

// Upstream is the issuer the gateway stands in front of.
type Upstream struct {
	// Base is the URL the operator gave; its origin receives passed-through
	// requests.
	Base *url.URL
	// Issuer is the issuer the upstream's discovery document names; empty
	// when it has no document.
	Issuer string
	// TokenURL is the upstream's token endpoint.
	TokenURL *url.URL
	// JWKSURL is where the upstream publishes its keys.
	JWKSURL *url.URL
	// Document is the upstream's discovery document; nil when it has none.
	Document map[string]any
}

// discoveryPaths are tried in order: OpenID Connect Discovery 1.0 §4, then
// RFC 8414 §3.
var discoveryPaths = []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"}

// Discover reads the upstream's discovery document for its token endpoint
// and JWKS. An upstream that has none (a 4xx other than 429 on both paths)
// gets Auth0's paths, /oauth/token and /.well-known/jwks.json. Any other
// failure is an error: guessing paths for an upstream that is only down
// could let tokens pass through without their rules.
func Discover(ctx context.Context, client *http.Client, base *url.URL) (*Upstream, error) {
	var found map[string]any
	for _, p := range discoveryPaths {
		doc, err := fetchJSON(ctx, client, joinPath(base, p))
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discover upstream: %w", err)
		}
		found = doc
		break
	}
	return fromDocument(base, found)
}

// fromDocument reads the endpoints of an upstream from its discovery
// document; a nil document means Auth0's paths.
func fromDocument(base *url.URL, doc map[string]any) (*Upstream, error) {
	up := &Upstream{Base: base, Document: doc}
	up.Issuer, _ = doc["issuer"].(string)
	var err error
	if up.TokenURL, err = endpoint(up.Document, "token_endpoint", joinPath(base, "/oauth/token")); err != nil {
		return nil, fmt.Errorf("discover upstream: %w", err)
	}
	if up.JWKSURL, err = endpoint(up.Document, "jwks_uri", joinPath(base, "/.well-known/jwks.json")); err != nil {
		return nil, fmt.Errorf("discover upstream: %w", err)
	}
	return up, nil
}

// endpoint reads an absolute http(s) URL from doc, or returns fallback when
// doc does not name one: the member is absent, null or empty. A value of
// another type is an error, as a malformed URL is (RFC 8414 §2 and OpenID
// Connect Discovery 1.0 §3 make both members URL strings).
func endpoint(doc map[string]any, name string, fallback *url.URL) (*url.URL, error) {
	v := doc[name]
	raw, ok := v.(string)
	if !ok && v != nil {
		return nil, fmt.Errorf("%s is not a string", name)
	}
	if raw == "" {
		return fallback, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not an absolute http(s) URL", name, raw)
	}
	return u, nil
}

func joinPath(base *url.URL, p string) *url.URL {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	return &u
}

// errAbsent is a client error other than 429 Too Many Requests: the
// document is not there, as opposed to the upstream failing.
var errAbsent = errors.New("not found")

// fetchJSON gets a JSON object, read up to maxDocumentSize.
func fetchJSON(ctx context.Context, client *http.Client, u *url.URL) (map[string]any, error) {
	body, err := fetch(ctx, client, u)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", u.Redacted(), err)
	}
	return doc, nil
}

// fetch gets u and returns its body; a 4xx other than 429 is errAbsent.
func fetch(ctx context.Context, client *http.Client, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()

	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil, fmt.Errorf("get %s: status %d: %w", u.Redacted(), resp.StatusCode, errAbsent)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d", u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	if len(body) > maxDocumentSize {
		return nil, fmt.Errorf("get %s: larger than %d bytes", u.Redacted(), maxDocumentSize)
	}
	return body, nil
}

// Timeouts of calls to the upstream.
const (
	upstreamDialTimeout   = 5 * time.Second
	upstreamHeaderTimeout = 15 * time.Second
	upstreamCallTimeout   = 30 * time.Second
)

// NewUpstreamTransport returns the transport for every call to the upstream,
// with a timeout on each phase.
func NewUpstreamTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   upstreamDialTimeout,
		ResponseHeaderTimeout: upstreamHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}
}
