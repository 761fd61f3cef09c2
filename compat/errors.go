package compat

import (
	"fmt"
	"net/http"
	"slices"

	lua "github.com/yuin/gopher-lua"
)

// Denial is an extension's decision to refuse the token, with the OAuth
// error the client receives (RFC 6749 §5.2).
type Denial struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the OAuth error code.
	Code string
	// Description is the extension's message, shown to the client.
	Description string
	// Extension names the extension that refused.
	Extension string
}

func (d *Denial) Error() string {
	return fmt.Sprintf("%s denied the token: %s: %s", d.Extension, d.Code, d.Description)
}

// errorKinds are the Auth0 error constructors extensions can call, with
// the answer each one gives.
var errorKinds = map[string]Denial{
	// Auth0 does: a rule's new UnauthorizedError(msg) gives
	// error=unauthorized.
	"UnauthorizedError": {Status: http.StatusForbidden, Code: "unauthorized"},
	// Auth0 does: a client-credentials-exchange hook's errors give
	// invalid_scope, invalid_request and server_error.
	"InvalidScopeError":   {Status: http.StatusBadRequest, Code: "invalid_scope"},
	"InvalidRequestError": {Status: http.StatusBadRequest, Code: "invalid_request"},
	"ServerError":         {Status: http.StatusInternalServerError, Code: "server_error"},
}

// denyCodes are the codes an action may pass to api.access.deny, with the
// status of the answer. Auth0 does: one of invalid_scope, invalid_request,
// server_error.
var denyCodes = map[string]int{
	"invalid_scope":   http.StatusBadRequest,
	"invalid_request": http.StatusBadRequest,
	"server_error":    http.StatusInternalServerError,
}

// installErrors defines each constructor as a global: Name(message) returns
// a table {name = Name, message = message} that denial recognises, whether
// it is passed to a callback or raised with error().
func installErrors(l *lua.LState, set func(string, lua.LValue)) {
	for name := range errorKinds {
		meta := l.NewTable()
		meta.RawSetString("__name", lua.LString(name))
		meta.RawSetString("__metatable", lua.LFalse)
		meta.RawSetString("__tostring", l.NewFunction(func(l *lua.LState) int {
			t := l.CheckTable(1)
			l.Push(lua.LString(name + ": " + lua.LVAsString(t.RawGetString("message"))))
			return 1
		}))
		set(name, l.NewFunction(func(l *lua.LState) int {
			t := l.CreateTable(0, 2)
			t.RawSetString("name", lua.LString(name))
			t.RawSetString("message", lua.LString(l.OptString(1, "")))
			t.Metatable = meta
			l.Push(t)
			return 1
		}))
	}
}

// The constructors each shape may refuse a token with. Auth0 does: a rule
// has UnauthorizedError only, any other error fails the request; a hook
// has the three hook errors; an action refuses through api.access.deny
// alone.
var (
	ruleErrors = []string{"UnauthorizedError"}
	hookErrors = []string{"InvalidScopeError", "InvalidRequestError", "ServerError"}
)

// denial returns the Denial for an error value built by one of the
// allowed constructors, or nil for any other value.
func denial(v lua.LValue, extension string, allowed []string) *Denial {
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil
	}
	meta, ok := t.Metatable.(*lua.LTable)
	if !ok {
		return nil
	}
	name := lua.LVAsString(meta.RawGetString("__name"))
	kind, ok := errorKinds[name]
	if !ok || !slices.Contains(allowed, name) {
		return nil
	}
	kind.Description = lua.LVAsString(t.RawGetString("message"))
	kind.Extension = extension
	return &kind
}
