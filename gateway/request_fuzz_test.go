package gateway

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// requestErrors are the messages parseTokenRequest may answer with, besides
// a repeated parameter's: each becomes an error_description as it is.
var requestErrors = []string{
	"the Content-Type header is malformed",
	"the body is not valid form encoding",
	"the body is not a JSON object",
	"the body must be application/x-www-form-urlencoded or application/json",
	"the Basic credentials are not form-encoded",
}

// FuzzParseTokenRequest reads hostile token requests: any Content-Type,
// body, query, Authorization header, X-Request-Id and Accept-Language. It
// must never panic; an error is one of the parser's plain messages, which
// name a parameter at most and never echo a value; a request it accepts
// carries no secret parameter for the rules, every other parameter as the
// client sent it, and the client named by Basic, form-decoded.
//
// basicUser, when not empty, is sent form-encoded in HTTP Basic as RFC
// 6749 §2.3.1 asks, and must come back unchanged as the client id;
// authorization, when basicUser is empty, is sent as it is. The seeds are
// in testdata/fuzz/FuzzParseTokenRequest.
func FuzzParseTokenRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType, query, authorization, basicUser, reqID, language string, body []byte) {
		r := &http.Request{
			Method:     http.MethodPost,
			URL:        &url.URL{Path: "/oauth/token", RawQuery: query},
			Header:     http.Header{},
			Host:       "gateway.example",
			RemoteAddr: "192.0.2.7:4321",
		}
		r.Header["Content-Type"] = []string{contentType}
		r.Header["X-Request-Id"] = []string{reqID}
		r.Header["Accept-Language"] = []string{language}
		switch {
		case basicUser != "":
			r.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape("s3cret"))
		case authorization != "":
			r.Header["Authorization"] = []string{authorization}
		}

		tr, err := parseTokenRequest(r, body)
		if err != nil {
			if tr != nil {
				t.Errorf("an error with a request: %v", err)
			}
			checkRequestError(t, err.Error(), contentType, body)
			if basicUser != "" && err.Error() == "the Basic credentials are not form-encoded" {
				t.Errorf("form-encoded Basic user %q refused", basicUser)
			}
			return
		}

		// Secrets never reach the rules, from the body or the query.
		for _, k := range secretParams {
			if _, ok := tr.body[k]; ok {
				t.Errorf("%s in the body the rules see: %v", k, tr.body)
			}
			if _, ok := tr.query[k]; ok {
				t.Errorf("%s in the query the rules see: %v", k, tr.query)
			}
		}

		// Every other parameter reaches them as the client sent it.
		params := sentParams(t, contentType, body)
		for _, k := range secretParams {
			delete(params, k)
		}
		if !reflect.DeepEqual(tr.body, params) {
			t.Errorf("body: got %#v, want %#v", tr.body, params)
		}
		wantQuery := map[string]any{}
		for k, v := range r.URL.Query() {
			if !slices.Contains(secretParams, k) {
				wantQuery[k] = v[0]
			}
		}
		if !reflect.DeepEqual(tr.query, wantQuery) {
			t.Errorf("query: got %#v, want %#v", tr.query, wantQuery)
		}
		if got, want := tr.grantType, str(params["grant_type"]); got != want {
			t.Errorf("grant type: got %q, want %q", got, want)
		}
		if got, want := tr.audience, str(params["audience"]); got != want {
			t.Errorf("audience: got %q, want %q", got, want)
		}
		wantScopes := strings.Fields(str(params["scope"]))
		if len(wantScopes) == 0 {
			wantScopes = nil
		}
		if !reflect.DeepEqual(tr.scopes, wantScopes) {
			t.Errorf("scopes: got %q, want %q", tr.scopes, wantScopes)
		}

		// The client: Basic's user, form-decoded (RFC 6749 §2.3.1), else
		// the body's client_id.
		wantClient := str(params["client_id"])
		if user, _, ok := r.BasicAuth(); ok {
			wantClient, _ = url.QueryUnescape(user)
		}
		if basicUser != "" {
			wantClient = basicUser
		}
		if tr.clientID != wantClient {
			t.Errorf("client id: got %q, want %q", tr.clientID, wantClient)
		}

		// What goes into the log is short and printable.
		if id := tr.requestID; id == "" || len(id) > maxRequestID ||
			strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Errorf("request id %q is not short printable ASCII", id)
		}
		if strings.ContainsAny(tr.language, ",;") || tr.language != strings.TrimSpace(tr.language) {
			t.Errorf("language %q is more than one tag", tr.language)
		}
	})
}

// checkRequestError fails unless msg is one of the parser's fixed messages,
// or names, quoted, a parameter the body gives more than once: a form
// parameter, or a top-level member of a JSON body.
func checkRequestError(t *testing.T, msg, contentType string, body []byte) {
	t.Helper()
	if slices.Contains(requestErrors, msg) {
		return
	}
	quoted, ok := strings.CutPrefix(msg, "the parameter ")
	if ok {
		quoted, ok = strings.CutSuffix(quoted, " is given more than once")
	}
	if ok {
		name, err := strconv.Unquote(quoted)
		n := 0
		if media, _, _ := mime.ParseMediaType(contentType); media == "application/json" {
			n = jsonMembers(body)[strings.ToLower(name)]
		} else {
			form, _ := url.ParseQuery(string(body))
			n = len(form[name])
		}
		if err == nil && n > 1 {
			return
		}
	}
	t.Errorf("error %q is not one of the parser's messages", msg)
}

// jsonMembers counts the top-level members of a JSON object by name,
// regardless of case (keyed in lower case), as the parser compares them.
// It reads with gjson, apart from the parser, and decodes each name as
// encoding/json does.
func jsonMembers(body []byte) map[string]int {
	count := map[string]int{}
	gjson.ParseBytes(body).ForEach(func(k, _ gjson.Result) bool {
		var name string
		if json.Unmarshal([]byte(k.Raw), &name) == nil {
			count[strings.ToLower(name)]++
		}
		return true
	})
	return count
}

// sentParams decodes the parameters of an accepted body on its own.
func sentParams(t *testing.T, contentType string, body []byte) map[string]any {
	t.Helper()
	media, _, _ := mime.ParseMediaType(contentType)
	params := map[string]any{}
	switch media {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("accepted a body that is not form encoding: %v", err)
		}
		for k, v := range form {
			if len(v) != 1 {
				t.Fatalf("accepted %q given %d times", k, len(v))
			}
			params[k] = v[0]
		}
	case "application/json":
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&params); err != nil {
			t.Fatalf("accepted a body that is not JSON: %v", err)
		}
		for k, n := range jsonMembers(body) {
			if n != 1 {
				t.Fatalf("accepted member %q given %d times", k, n)
			}
		}
	default:
		t.Fatalf("accepted a body of type %q", contentType)
	}
	return params
}
