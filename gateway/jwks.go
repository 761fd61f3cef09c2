package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// allowedAlgorithms are the asymmetric JWS algorithms accepted from the
// upstream. "none" and the HMAC family are absent on purpose: a verifier
// that accepts them lets anyone who knows a public key mint tokens.
var allowedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Limits of upstream token verification.
const (
	maxTokenSize     = 16 << 10         // a larger upstream token is refused unread
	clockLeeway      = 30 * time.Second // for exp and nbf (RFC 7519 §4.1.4)
	jwksMinRefetch   = 10 * time.Second // between fetches caused by unknown kids
	jwksMaxAge       = time.Hour        // a JWKS older than this is fetched again
	jwksMaxStale     = 24 * time.Hour   // while fetches fail, keys this old still verify
	jwksFetchTimeout = 10 * time.Second
)

// Errors of upstream token verification.
var (
	errUnknownKey   = errors.New("no upstream key matches the token")
	errTokenExpired = errors.New("token expired")
)

// Verifier verifies tokens against the upstream's JWKS, which it caches and
// fetches again on an unknown kid, at most once per jwksMinRefetch.
type Verifier struct {
	client     *http.Client
	jwksURL    *url.URL
	issuer     string // expected iss; empty skips the check
	logger     *slog.Logger
	onFetch    func(result string)
	now        func() time.Time
	shared     SharedCache // nil: this replica fetches alone
	sharedName string      // the JWKS's name in it, after its URL

	group     singleflight.Group
	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetched   time.Time // of the keys held
	attempted time.Time // of the last fetch, whatever its result
}

// NewVerifier returns a verifier for tokens issued by issuer (empty to
// accept any iss) and signed by keys from jwksURL. onFetch, if not nil, is
// told "ok" or "error" after each fetch.
func NewVerifier(client *http.Client, jwksURL *url.URL, issuer string, logger *slog.Logger, onFetch func(string)) *Verifier {
	if onFetch == nil {
		onFetch = func(string) {}
	}
	return &Verifier{client: client, jwksURL: jwksURL, issuer: issuer, logger: logger, onFetch: onFetch, now: time.Now}
}

// Verify checks raw's signature against the upstream JWKS, and its exp,
// nbf and iss, and returns its header and claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (jose.Header, Claims, error) {
	if len(raw) > maxTokenSize {
		return jose.Header{}, nil, fmt.Errorf("verify upstream token: larger than %d bytes", maxTokenSize)
	}
	// RFC 7519 §1: a JWT is in the compact serialization only.
	jws, err := jose.ParseSignedCompact(raw, allowedAlgorithms)
	if err != nil {
		return jose.Header{}, nil, fmt.Errorf("verify upstream token: %w", err)
	}
	header := jws.Signatures[0].Header
	// RFC 7515 §4.1.11: extensions the gateway does not implement must
	// fail; it implements none, b64 (RFC 7797) included.
	for _, name := range []string{"crit", "b64"} {
		if _, ok := header.ExtraHeaders[jose.HeaderKey(name)]; ok {
			return header, nil, fmt.Errorf("verify upstream token: %q header not supported", name)
		}
	}

	key, err := v.key(ctx, header)
	if err != nil {
		return header, nil, fmt.Errorf("verify upstream token: %w", err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return header, nil, fmt.Errorf("verify upstream token: %w", err)
	}

	claims, err := decodeClaims(payload)
	if err != nil {
		return header, nil, fmt.Errorf("verify upstream token: %w", err)
	}
	if err := v.checkClaims(claims); err != nil {
		return header, nil, fmt.Errorf("verify upstream token: %w", err)
	}
	return header, claims, nil
}

// checkClaims checks the registered claims the gateway relies on: exp is
// required, since a re-signed token without it would never expire; nbf and
// iat, when present, must be dates as well.
func (v *Verifier) checkClaims(claims Claims) error {
	now := v.now()
	exp, ok := claims.NumericDate("exp")
	if !ok {
		return errors.New("exp missing or not a number")
	}
	if now.After(exp.Add(clockLeeway)) { // RFC 7519 §4.1.4
		return errTokenExpired
	}
	if _, present := claims["nbf"]; present {
		nbf, ok := claims.NumericDate("nbf")
		if !ok {
			return errors.New("nbf not a date")
		}
		if now.Add(clockLeeway).Before(nbf) { // RFC 7519 §4.1.5
			return errors.New("token not valid yet")
		}
	}
	// RFC 7519 §4.1.6: iat is a NumericDate too. The re-signed token keeps
	// it, so one that is no date must not reach the APIs.
	if _, present := claims["iat"]; present {
		if _, ok := claims.NumericDate("iat"); !ok {
			return errors.New("iat not a date")
		}
	}
	if v.issuer != "" {
		iss, _ := claims.String("iss")
		if strings.TrimSuffix(iss, "/") != strings.TrimSuffix(v.issuer, "/") {
			return fmt.Errorf("iss %q is not the upstream issuer %q", iss, v.issuer)
		}
	}
	return nil
}

// key finds the upstream key for a token header. The JWKS is fetched when
// none is held, when it is older than jwksMaxAge, and when no key matches
// the token; never more than once per jwksMinRefetch, so that neither a
// flood of unknown kids nor a failing upstream turns every request into a
// fetch. While fetches fail, keys up to jwksMaxStale old still verify.
func (v *Verifier) key(ctx context.Context, h jose.Header) (any, error) {
	v.mu.RLock()
	keys, fetched, attempted := v.keys, v.fetched, v.attempted
	v.mu.RUnlock()
	now := v.now()
	mayFetch := now.Sub(attempted) >= jwksMinRefetch

	if (keys == nil || now.Sub(fetched) > jwksMaxAge) && mayFetch {
		fresh, at, err := v.refresh(ctx, now.Add(-jwksMaxAge), "")
		switch {
		case err == nil:
			keys, fetched = fresh, at
		case keys == nil:
			return nil, err
		default:
			v.logger.Warn("upstream jwks refresh failed; verifying with the keys held",
				"age", now.Sub(fetched).Round(time.Second).String(), "cause", err.Error())
		}
		mayFetch = false
	}
	if keys == nil {
		return nil, errors.New("no upstream keys: the last JWKS fetch failed")
	}
	if now.Sub(fetched) > jwksMaxStale {
		return nil, fmt.Errorf("upstream keys are %s old and cannot be refreshed", now.Sub(fetched).Round(time.Minute))
	}
	if k := match(keys, h); k != nil {
		return k, nil
	}
	if !mayFetch {
		return nil, fmt.Errorf("%w (kid %q)", errUnknownKey, h.KeyID)
	}
	// An unknown kid: the upstream may have rotated its keys. A copy a
	// fleet-mate fetched since will do, if recent enough to have seen it.
	keys, _, err := v.refresh(ctx, later(fetched, now.Add(-jwksMinRefetch)), h.KeyID)
	if err != nil {
		return nil, err
	}
	if k := match(keys, h); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w (kid %q)", errUnknownKey, h.KeyID)
}

// match returns the public key for h among keys: by kid when the token has
// one, else the only key fit for its algorithm.
func match(keys []jose.JSONWebKey, h jose.Header) any {
	var found any
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if h.KeyID != "" {
			if k.KeyID == h.KeyID {
				return k.Key
			}
			continue
		}
		if found != nil {
			return nil // several candidates and no kid to choose
		}
		found = k.Key
	}
	return found
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Share makes the verifier take the JWKS from c when a fleet-mate fetched
// it recently enough, and fetch it for the fleet when it takes c's lock.
// Call it before the first Verify.
func (v *Verifier) Share(c SharedCache) {
	v.shared, v.sharedName = c, "jwks:"+shortHash(v.jwksURL.String())
}

// jwksResult is what one refresh gives its waiters.
type jwksResult struct {
	keys    []jose.JSONWebKey
	fetched time.Time
}

// refresh fetches the JWKS once for all callers waiting on it, from a
// fleet-mate's copy fetched after newerThan when there is one that parses
// and, when kid is not empty, has that key; it returns the keys and when
// they were fetched.
func (v *Verifier) refresh(ctx context.Context, newerThan time.Time, kid string) ([]jose.JSONWebKey, time.Time, error) {
	ch := v.group.DoChan("jwks", func() (any, error) {
		// The fetch outlives a caller that gives up; others may be waiting.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
		defer cancel()
		body, at, source, err := v.fetchBody(fctx, newerThan, kid)
		var keys []jose.JSONWebKey
		if err == nil {
			keys, err = v.parse(body)
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		v.attempted = v.now()
		if err != nil {
			v.onFetch("error")
			return nil, err
		}
		v.onFetch(source)
		v.keys, v.fetched = keys, at
		return jwksResult{keys, at}, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, time.Time{}, r.Err
		}
		res := r.Val.(jwksResult)
		return res.keys, res.fetched, nil
	case <-ctx.Done():
		return nil, time.Time{}, fmt.Errorf("fetch upstream JWKS: %w", ctx.Err())
	}
}

// fetchBody reads the JWKS document: the fleet's copy when there is a
// recent enough one ("shared"), else from the upstream ("ok").
func (v *Verifier) fetchBody(ctx context.Context, newerThan time.Time, kid string) ([]byte, time.Time, string, error) {
	get := func(ctx context.Context) ([]byte, error) {
		body, err := fetch(ctx, v.client, v.jwksURL)
		if err != nil {
			return nil, fmt.Errorf("fetch upstream JWKS: %w", err)
		}
		return body, nil
	}
	if v.shared != nil {
		accept := func(body []byte) bool {
			keys, err := v.parse(body)
			return err == nil && len(keys) > 0 && (kid == "" || slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }))
		}
		body, at, mine, err := sharedFetch(ctx, v.shared, v.sharedName, newerThan, v.now, get, accept)
		switch {
		case err == nil && !mine:
			return body, at, "shared", nil
		case err == nil:
			return body, at, "ok", nil
		case !errors.Is(err, errNotShared):
			return nil, time.Time{}, "", err
		}
	}
	body, err := get(ctx)
	return body, v.now(), "ok", err
}

// parse reads a JWKS, keeping the public signing keys it can parse. A key
// it cannot parse, a private key or an encryption key is skipped with a
// warning rather than failing the whole set.
func (v *Verifier) parse(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("fetch upstream JWKS: %w", err)
	}

	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		switch err := k.UnmarshalJSON(raw); {
		case err != nil:
			v.logger.Warn("upstream jwks key skipped", "index", i, "reason", err.Error())
		case !k.IsPublic():
			v.logger.Warn("upstream jwks key skipped", "index", i, "kid", k.KeyID, "reason", "private key published")
		case k.Use != "" && k.Use != "sig":
			// an encryption key; not for verifying signatures
		default:
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// httpClient is the default client for upstream calls.
func httpClient() *http.Client {
	return &http.Client{Transport: NewUpstreamTransport(), Timeout: upstreamCallTimeout}
}
