package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

type tokenRequestKey struct{}

// serveToken reads and checks a token request, then sends it upstream as it
// came; rewriteTokenAnswer handles the answer.
func (g *Gateway) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		// A CORS preflight from a browser client: the upstream answers it.
		g.passThrough.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	if r.Method != http.MethodPost { // RFC 6749 §3.2
		w.Header().Set("Allow", http.MethodPost)
		g.fail(w, r, nil, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request",
			description: "the token endpoint accepts POST only", outcome: outcomeBadRequest})
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		desc := "the request body could not be read"
		if errors.As(err, new(*http.MaxBytesError)) {
			desc = "the request body is larger than 64 KiB"
		}
		g.fail(w, r, nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request",
			description: desc, outcome: outcomeBadRequest, cause: err})
		return
	}
	treq, err := parseTokenRequest(r, body)
	if err != nil {
		g.fail(w, r, nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request",
			description: err.Error(), outcome: outcomeBadRequest})
		return
	}
	treq.start = start
	// The request runs start to end on the rule set loaded now, whatever
	// replaces it meanwhile. Without one, no token: the upstream's would
	// skip the rules.
	if treq.pipeline = g.pipeline.Load(); treq.pipeline == nil {
		w.Header().Set("Retry-After", "1")
		g.fail(w, r, treq, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			description: "the gateway has not loaded its rules yet", outcome: outcomeNotReady})
		return
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	// The proxy uses the transport alone: bound the whole upstream call
	// here, body included.
	ctx, cancel := context.WithTimeout(r.Context(), upstreamCallTimeout)
	defer cancel()
	treq.upstream = time.Now()
	g.tokenProxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, tokenRequestKey{}, treq)))
}

// newTokenProxy returns the proxy that sends token requests to the upstream
// token endpoint, unchanged but for the forwarding headers.
func (g *Gateway) newTokenProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *g.upstream.TokenURL
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.URL, pr.Out.Host = &u, ""
			pr.SetXForwarded()
			// The gateway must read the answer: let the transport ask for
			// compression and undo it.
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport:      g.client.Transport,
		BufferPool:     g.buffers,
		ModifyResponse: g.rewriteTokenAnswer,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.fail(w, r, tokenRequestOf(r), upstreamFailure(err))
		},
	}
}

func tokenRequestOf(r *http.Request) *tokenRequest {
	tr, _ := r.Context().Value(tokenRequestKey{}).(*tokenRequest)
	return tr
}

// upstreamFailure turns what the proxy met into the client's answer: an
// *oauthError of the gateway's own as it is, a failed call as a 502 or 504.
func upstreamFailure(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &oauthError{status: http.StatusGatewayTimeout, code: "server_error",
			description: "the upstream issuer did not answer in time", outcome: outcomeUpstream, cause: err}
	}
	return &oauthError{status: http.StatusBadGateway, code: "server_error",
		description: "the upstream issuer could not be reached", outcome: outcomeUpstream, cause: err}
}

// rewriteTokenAnswer replaces the access token of a successful upstream
// answer with the re-signed one. Error answers pass unchanged.
func (g *Gateway) rewriteTokenAnswer(resp *http.Response) error {
	treq := tokenRequestOf(resp.Request)
	if treq != nil && !treq.upstream.IsZero() {
		g.metrics.upstreamTime.Observe(time.Since(treq.upstream).Seconds())
	}
	// Any success goes through verification and the rules: a 2xx other
	// than 200 (RFC 6749 §5.1) must not carry a token past them.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		g.record(treq, outcomeUpstream, nil, nil, slog.Int(keyStatus, resp.StatusCode))
		return nil
	}

	body, err := readBody(resp)
	if err == nil && len(body) > maxDocumentSize {
		err = errors.New("token answer larger than 1 MiB")
	}
	if err != nil {
		return &oauthError{status: http.StatusBadGateway, code: "server_error",
			description: "the upstream issuer's answer could not be read", outcome: outcomeUpstream, cause: err}
	}
	answer, raw, err := decodeAnswer(body)
	if err != nil {
		return &oauthError{status: http.StatusBadGateway, code: "server_error",
			description: "the upstream issuer answered without an access token", outcome: outcomeUpstream, cause: err}
	}
	if jsonSerialized(raw) {
		// RFC 7519 §1: a JWT is compact. Nor is this opaque: an API that
		// verifies opaque tokens against the upstream could accept it,
		// rules skipped.
		return verificationFailure(errors.New("verify upstream token: a JOSE JSON serialization, not a JWT"))
	}
	if strings.Count(raw, ".") != 2 {
		// An opaque token (Auth0 issues one, a compact JWE, when no
		// audience is asked for) or an encrypted one: nothing to verify
		// or change.
		g.record(treq, outcomeOpaque, nil, nil)
		setBody(resp, body)
		return nil
	}

	token, scopes, err := g.reissue(resp.Request.Context(), treq, raw)
	if err != nil {
		return err
	}
	answer.Set("access_token", token)
	answer.Set("scope", strings.Join(scopes, " "))
	out, err := answer.MarshalJSON()
	if err != nil {
		return &oauthError{status: http.StatusInternalServerError, code: "server_error",
			description: "the token answer could not be written", outcome: outcomeRuleError, cause: err}
	}
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	setBody(resp, out)
	return nil
}

// jsonSerialized reports whether raw is a JWS or JWE in the JSON
// serialization (RFC 7515 §7.2, RFC 7516 §7.2): a JSON object, after any
// white space, which JOSE libraries skip.
func jsonSerialized(raw string) bool {
	return strings.HasPrefix(strings.TrimLeftFunc(raw, unicode.IsSpace), "{")
}

// verificationFailure is the client's answer to an upstream token that
// fails verification: no token, whatever the cause.
func verificationFailure(err error) *oauthError {
	return &oauthError{status: http.StatusBadGateway, code: "server_error",
		description: "the upstream token could not be verified", outcome: outcomeVerification, cause: err}
}

// decodeAnswer reads a token answer (RFC 6749 §5.1) and its access token.
// Its fields stay raw JSON, as Claims do, to be written back unchanged.
func decodeAnswer(body []byte) (Claims, string, error) {
	answer, err := decodeClaims(body)
	if err != nil {
		return nil, "", err
	}
	token, _ := answer.String("access_token")
	if token == "" {
		return nil, "", errors.New("no access_token in the answer")
	}
	return answer, token, nil
}

// readBody reads an upstream answer of up to maxDocumentSize bytes, in one
// allocation when the upstream gave its length.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxDocumentSize+1)
	if n := resp.ContentLength; n > 0 && n <= maxDocumentSize {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		// The transport ends the body at Content-Length; a read past it
		// only confirms the end.
		if k, _ := body.Read(make([]byte, 1)); k > 0 {
			return nil, errors.New("token answer longer than its Content-Length")
		}
		return buf, nil
	}
	return io.ReadAll(body)
}

func setBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// reissue verifies an upstream token, runs the extensions on it and signs
// the result with the gateway's active key. It returns the new token and
// its final scopes, or an *oauthError.
func (g *Gateway) reissue(ctx context.Context, treq *tokenRequest, raw string) (string, []string, error) {
	header, claims, err := g.verifier.Verify(ctx, raw)
	if err != nil {
		return "", nil, verificationFailure(err)
	}
	payload, granted, res, oerr := g.transform(ctx, treq, claims, true)
	if oerr != nil {
		return "", nil, oerr
	}
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	token, err := g.keySet().Active.Sign(payload, typ)
	if err != nil {
		return "", nil, &oauthError{status: http.StatusInternalServerError, code: "server_error",
			description: "the token could not be signed", outcome: outcomeRuleError, cause: err}
	}

	g.record(treq, outcomeIssued, granted, res)
	return token, res.Scopes, nil
}

// transform runs the request's pipeline on the verified claims of an
// upstream token and returns the claims of the token to sign, with the
// granted scopes and the extensions' result. shadow also starts the shadow
// run, which a trial (rulesgate rules test) does not want.
func (g *Gateway) transform(ctx context.Context, treq *tokenRequest, claims Claims, shadow bool) ([]byte, []string, *compat.Result, *oauthError) {
	granted, shape, err := readScopes(claims)
	if err != nil {
		return nil, nil, nil, &oauthError{status: http.StatusBadGateway, code: "server_error",
			description: "the upstream token's scopes could not be read", outcome: outcomeVerification, cause: err}
	}
	treq.clientID = clientOf(claims, treq)

	tx := &compat.Transaction{
		ClientID:        treq.clientID,
		GrantType:       treq.grantType,
		Audience:        treq.audience,
		RequestedScopes: treq.scopes,
		GrantedScopes:   granted,
		Request: compat.Request{IP: treq.ip, Hostname: treq.host, UserAgent: treq.userAgent,
			Language: treq.language, Query: treq.query, Body: treq.body},
		// Auth0 does: the correlation id is the issuer's, not the client's,
		// so that an action can trust it, as a cache key say.
		CorrelationID: rand.Text(),
	}
	rctx, cancel := context.WithTimeout(ctx, g.ruleTimeout)
	res, err := treq.pipeline.Run(rctx, tx)
	cancel()
	if shadow {
		g.shadow(treq.pipeline.Pipeline, treq.requestID, tx, res, err)
	}
	if err != nil {
		return nil, granted, nil, extensionFailure(err)
	}

	payload, err := g.rewriteClaims(claims, shape, res)
	if err != nil {
		return nil, granted, nil, &oauthError{status: http.StatusInternalServerError, code: "server_error",
			description: "the token could not be signed", outcome: outcomeRuleError, cause: err}
	}
	return payload, granted, res, nil
}

// extensionFailure turns a pipeline error into the client's answer: a
// denial as the extension chose it, anything else as a 500 whose
// description says nothing of the Lua inside.
func extensionFailure(err error) *oauthError {
	var d *compat.Denial
	switch {
	case errors.As(err, &d):
		return &oauthError{status: d.Status, code: d.Code, description: d.Description, outcome: outcomeDenied, cause: err}
	case rules.IsTimeout(err):
		return &oauthError{status: http.StatusInternalServerError, code: "server_error",
			description: "the token rules did not finish in time", outcome: outcomeTimeout, cause: err}
	}
	return &oauthError{status: http.StatusInternalServerError, code: "server_error",
		description: "the token rules failed", outcome: outcomeRuleError, cause: err}
}

// rewriteClaims writes what the extensions decided into the upstream's
// claims, sets the gateway's iss, and encodes the token's payload.
func (g *Gateway) rewriteClaims(claims Claims, shape scopeShape, res *compat.Result) ([]byte, error) {
	for name, v := range res.Claims {
		if err := claims.Set(name, v); err != nil {
			return nil, err
		}
	}
	if err := shape.write(claims, res.Scopes); err != nil {
		return nil, err
	}
	if err := claims.Set("iss", g.issuer); err != nil {
		return nil, err
	}
	return claims.MarshalJSON()
}

// clientOf names the client the token was issued to: azp (Auth0) or
// client_id (RFC 9068 §2.2) from the verified token, else the request's.
func clientOf(claims Claims, treq *tokenRequest) string {
	for _, c := range []string{"azp", "client_id"} {
		if id, ok := claims.String(c); ok && id != "" {
			return id
		}
	}
	return treq.clientID
}

// scopeClaims are the claims an upstream may carry its scopes in: "scope"
// (RFC 8693 §4.2, Auth0) and "scp" (Hydra, Okta, Entra ID).
var scopeClaims = [...]string{"scope", "scp"}

// scopeShape remembers how the upstream wrote each scope claim, a
// space-separated string or an array of strings, so that the gateway
// writes the final scopes back the same way.
type scopeShape [len(scopeClaims)]byte

const (
	shapeNone byte = iota
	shapeString
	shapeArray
)

// readScopes reads the granted scopes. A scope claim in any other shape is
// an error: the gateway could neither narrow it nor leave it as it is.
func readScopes(claims Claims) ([]string, scopeShape, error) {
	var shape scopeShape
	var scopes []string
	for i, name := range scopeClaims {
		if _, present := claims[name]; !present {
			continue
		}
		if s, ok := claims.String(name); ok {
			shape[i] = shapeString
			scopes = append(scopes, strings.Fields(s)...)
		} else if a, ok := claims.Strings(name); ok {
			shape[i] = shapeArray
			scopes = append(scopes, a...)
		} else {
			return nil, shape, fmt.Errorf("claim %q is neither a string nor an array of strings", name)
		}
	}
	return scopes, shape, nil
}

func (sh scopeShape) write(claims Claims, scopes []string) error {
	for i, name := range scopeClaims {
		var v any
		switch sh[i] {
		case shapeString:
			v = strings.Join(scopes, " ")
		case shapeArray:
			v = scopes
		default:
			continue
		}
		if err := claims.Set(name, v); err != nil {
			return err
		}
	}
	return nil
}
