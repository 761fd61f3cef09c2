package migrate

import (
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// eventField is where a field of an Auth0 Rules context lives in a
// Credentials Exchange Action's event, as Auth0's guide "Migrate from
// Rules to Actions" maps it.
type eventField struct {
	path string // the same in JavaScript and Lua
	t    typ
	// optional fields may be missing from Auth0's event: JavaScript reads
	// their members with ?.
	optional bool
}

// requestParams is the type of a request's body or query.
var requestParams = typ{k: kTable, s: shapeObject, elem: &typ{k: kAny, s: shapeUnknown}}

// contextFields maps context paths (dot-joined) to event fields.
var contextFields = map[string]eventField{
	"clientID":          {path: "event.client.client_id", t: stringType},
	"clientName":        {path: "event.client.name", t: stringType},
	"clientMetadata":    {path: "event.client.metadata", t: objectOf(stringType)},
	"protocol":          {path: "event.transaction.protocol", t: stringType},
	"tenant":            {path: "event.tenant.id", t: stringType},
	"request.body":      {path: "event.request.body", t: requestParams},
	"request.query":     {path: "event.request.query", t: requestParams, optional: true},
	"request.ip":        {path: "event.request.ip", t: stringType},
	"request.hostname":  {path: "event.request.hostname", t: stringType},
	"request.userAgent": {path: "event.request.user_agent", t: stringType},
}

// contextContainers are context paths that hold mapped fields but have
// no event counterpart as a whole.
var contextContainers = map[string]bool{"": true, "request": true, "accessToken": true}

// oauthParams are the token request's own parameters. The issuer
// accepted the request before any rule ran, so each is a string when
// present; other body and query members may be any JSON value.
var oauthParams = map[string]bool{
	"grant_type": true, "client_id": true, "audience": true, "scope": true,
	"organization": true, "resource": true,
}

// contextPath returns the constant path of e below the rule's context
// parameter ("request", "body" for context.request.body), and whether e
// is such a path. A dynamic key (context[k]) is not a path.
func (a *analysis) contextPath(e ast.Expr) ([]string, bool) {
	switch e := e.(type) {
	case *ast.IdentExpr:
		v := a.refs[e]
		return nil, v != nil && v.role == roleContext
	case *ast.AttrGetExpr:
		key, ok := e.Key.(*ast.StringExpr)
		if !ok {
			return nil, false
		}
		path, ok := a.contextPath(e.Object)
		if !ok {
			return nil, false
		}
		return append(path[:len(path):len(path)], key.Value), true
	}
	return nil, false
}

// rootedAtContext reports whether e indexes the context parameter, with
// constant keys or not.
func (a *analysis) rootedAtContext(e ast.Expr) bool {
	for {
		switch x := e.(type) {
		case *ast.IdentExpr:
			v := a.refs[x]
			return v != nil && v.role == roleContext
		case *ast.AttrGetExpr:
			e = x.Object
		default:
			return false
		}
	}
}

// contextType returns the type of the context member at path.
func contextType(path []string) typ {
	joined := strings.Join(path, ".")
	if f, ok := contextFields[joined]; ok {
		return f.t
	}
	if joined == "accessToken.scope" {
		return arrayOf(stringType)
	}
	if len(path) == 2 && path[0] == "clientMetadata" {
		return stringType.orNil()
	}
	if len(path) == 3 && path[0] == "request" && (path[1] == "body" || path[1] == "query") {
		if oauthParams[path[2]] {
			return stringType.orNil()
		}
	}
	return anyType
}

// isScopePath reports whether path is context.accessToken.scope.
func isScopePath(path []string) bool {
	return len(path) == 2 && path[0] == "accessToken" && path[1] == "scope"
}

// isClaimTarget reports whether path names a member of
// context.accessToken other than scope: a custom claim.
func isClaimTarget(path []string) bool {
	return len(path) == 2 && path[0] == "accessToken" && path[1] != "scope"
}
