package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxRequestBody is the largest token request body the gateway reads.
const maxRequestBody = 64 << 10

// secretParams are request parameters extensions never see: client
// credentials (RFC 6749 §2.3.1, RFC 7523 §2.2) and grant secrets.
var secretParams = []string{
	"client_secret", "client_assertion", "password", "refresh_token", "code",
	"code_verifier", "subject_token", "actor_token", "device_code",
}

// tokenRequest is what the gateway read of a token request. The body itself
// goes upstream unchanged.
type tokenRequest struct {
	clientID  string
	grantType string
	audience  string
	scopes    []string       // nil when the request names none
	body      map[string]any // without secretParams
	query     map[string]any
	ip        string
	host      string
	userAgent string
	language  string // the first language of Accept-Language
	requestID string // from X-Request-Id, or made up
	pipeline  *loadedPipeline
	start     time.Time // when the gateway began reading the request
	upstream  time.Time // when it sent the request upstream
}

// parseTokenRequest reads the parameters of a token request body, form
// (RFC 6749 §4.4.2) or JSON (as Auth0 accepts), and its client from HTTP
// Basic (RFC 6749 §2.3.1) or the body.
func parseTokenRequest(r *http.Request, body []byte) (*tokenRequest, error) {
	params, err := parseParams(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}

	tr := &tokenRequest{
		grantType: str(params["grant_type"]),
		audience:  str(params["audience"]),
		clientID:  str(params["client_id"]),
		query:     map[string]any{},
		host:      r.Host,
		userAgent: r.UserAgent(),
		language:  firstLanguage(r.Header.Get("Accept-Language")),
		requestID: requestID(r.Header.Get("X-Request-Id")),
	}
	if user, _, ok := r.BasicAuth(); ok {
		if tr.clientID, err = url.QueryUnescape(user); err != nil {
			return nil, errors.New("the Basic credentials are not form-encoded")
		}
	}
	tr.scopes = strings.Fields(str(params["scope"]))
	if len(tr.scopes) == 0 {
		tr.scopes = nil
	}
	if tr.ip, _, err = net.SplitHostPort(r.RemoteAddr); err != nil {
		tr.ip = r.RemoteAddr
	}
	for k, v := range r.URL.Query() {
		tr.query[k] = v[0]
	}
	for _, k := range secretParams {
		delete(params, k)
		delete(tr.query, k)
	}
	tr.body = params
	return tr, nil
}

// parseParams reads a form or JSON body into parameters. A parameter given
// twice, a form parameter or a JSON member, is refused (RFC 6749 §3.2):
// the gateway and the upstream could read different values from it.
func parseParams(contentType string, body []byte) (map[string]any, error) {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, errors.New("the Content-Type header is malformed")
	}

	switch media {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errors.New("the body is not valid form encoding")
		}
		params := make(map[string]any, len(form))
		for k, v := range form {
			if len(v) > 1 {
				return nil, fmt.Errorf("the parameter %q is given more than once", k)
			}
			params[k] = v[0]
		}
		return params, nil

	case "application/json":
		return parseJSONParams(body)
	}
	return nil, errors.New("the body must be application/x-www-form-urlencoded or application/json")
}

// parseJSONParams reads a JSON object body into parameters, member by
// member, so as to see a name given twice: RFC 8259 §4 leaves which one
// counts to each reader. Names are compared regardless of case, as an
// upstream that decodes into Go structs reads them. A body that is no
// JSON object, or has more after it, is refused first.
func parseJSONParams(body []byte) (map[string]any, error) {
	errNotObject := errors.New("the body is not a JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errNotObject
	}

	params := make(map[string]any)
	seen := make(map[string]bool)
	repeated, isRepeated := "", false // the name may be ""
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, errNotObject
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, errNotObject
		}
		if folded := strings.ToLower(name); seen[folded] && !isRepeated {
			repeated, isRepeated = name, true
		} else {
			seen[folded] = true
		}
		params[name] = v
	}
	if _, err := dec.Token(); err != nil || len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, errNotObject
	}

	if isRepeated {
		return nil, fmt.Errorf("the parameter %q is given more than once", repeated)
	}
	return params, nil
}

// str returns v if it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// firstLanguage returns the first language tag of an Accept-Language
// header (RFC 9110 §12.5.4), without its weight.
func firstLanguage(h string) string {
	tag, _, _ := strings.Cut(h, ",")
	tag, _, _ = strings.Cut(tag, ";")
	return strings.TrimSpace(tag)
}

// maxRequestID bounds a client's X-Request-Id.
const maxRequestID = 128

// requestID returns the client's X-Request-Id when it is short and
// printable ASCII, else a new random one, so that a log line can be tied
// to a request without letting a client write what it likes into the log.
func requestID(h string) string {
	if h != "" && len(h) <= maxRequestID && !strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return h
	}
	return rand.Text()
}
