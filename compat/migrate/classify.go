package migrate

import (
	"github.com/yuin/gopher-lua/ast"
)

// specialKind names the rule statements an action writes differently.
type specialKind uint8

const (
	spNone      specialKind = iota
	spProceed               // callback(nil, user, context): return
	spDeny                  // UnauthorizedError(msg) given to callback or error()
	spFail                  // callback(err) with another error
	spSetScopes             // context.accessToken.scope = value
	spAddScope              // table.insert(context.accessToken.scope, value)
	spClaim                 // context.accessToken[key] = value
)

// special is a statement of the rule function that maps to the action API.
type special struct {
	kind specialKind
	// arg is the denial message, the error, the scopes or the claim value;
	// nil for a denial without a message.
	arg ast.Expr
	key ast.Expr // the claim's name
	ret bool     // return callback(...): the statement returns
	// call is the callback or error() call the statement makes.
	call *ast.FuncCallExpr
}

// classify returns what s means to the action. Only statements directly
// in the rule function are special: a nested function cannot return from
// the action.
func (a *analysis) classify(s ast.Stmt) special {
	switch s := s.(type) {
	case *ast.FuncCallStmt:
		call, _ := s.Expr.(*ast.FuncCallExpr)
		return a.classifyCall(call)
	case *ast.ReturnStmt:
		if len(s.Exprs) == 1 {
			if call, ok := s.Exprs[0].(*ast.FuncCallExpr); ok && a.isCallback(call.Func) {
				sp := a.classifyCall(call)
				sp.ret = true
				return sp
			}
		}
	case *ast.AssignStmt:
		if len(s.Lhs) != 1 || len(s.Rhs) != 1 {
			return special{}
		}
		target, ok := s.Lhs[0].(*ast.AttrGetExpr)
		if !ok {
			return special{}
		}
		if path, ok := a.contextPath(target); ok && isScopePath(path) {
			return special{kind: spSetScopes, arg: s.Rhs[0]}
		}
		if a.isClaimTarget(target) {
			return special{kind: spClaim, key: target.Key, arg: s.Rhs[0]}
		}
	}
	return special{}
}

// classifyCall classifies a call made as a statement.
func (a *analysis) classifyCall(call *ast.FuncCallExpr) special {
	if call == nil {
		return special{}
	}
	switch {
	case a.isCallback(call.Func):
		if len(call.Args) == 0 || isNil(call.Args[0]) {
			return special{kind: spProceed, call: call}
		}
		if msg, ok := a.unauthorized(call.Args[0]); ok {
			return special{kind: spDeny, arg: msg, call: call}
		}
		return special{kind: spFail, arg: call.Args[0], call: call}
	case a.builtin(call) == "error" && len(call.Args) > 0:
		if msg, ok := a.unauthorized(call.Args[0]); ok {
			// error() does not return: nothing after it runs.
			return special{kind: spDeny, arg: msg, call: call, ret: true}
		}
	case a.builtin(call) == "table.insert" && len(call.Args) == 2 && a.isScopeRead(call.Args[0]):
		return special{kind: spAddScope, arg: call.Args[1]}
	}
	return special{}
}

func isNil(e ast.Expr) bool {
	_, ok := e.(*ast.NilExpr)
	return ok
}

// isCallback reports whether e is the rule's callback parameter.
func (a *analysis) isCallback(e ast.Expr) bool {
	id, ok := e.(*ast.IdentExpr)
	return ok && a.refs[id] != nil && a.refs[id].role == roleCallback
}

// unauthorized returns the message of UnauthorizedError(msg); a nil
// message when it has none.
func (a *analysis) unauthorized(e ast.Expr) (ast.Expr, bool) {
	call, ok := e.(*ast.FuncCallExpr)
	if !ok || a.builtin(call) != "UnauthorizedError" {
		return nil, false
	}
	if len(call.Args) == 0 {
		return nil, true
	}
	return call.Args[0], true
}

// isScopeRead reports whether e is context.accessToken.scope.
func (a *analysis) isScopeRead(e ast.Expr) bool {
	path, ok := a.contextPath(e)
	return ok && isScopePath(path)
}

// isClaimTarget reports whether e is context.accessToken[k] for a k
// other than "scope".
func (a *analysis) isClaimTarget(e *ast.AttrGetExpr) bool {
	path, ok := a.contextPath(e.Object)
	if !ok || len(path) != 1 || path[0] != "accessToken" {
		return false
	}
	key, isString := e.Key.(*ast.StringExpr)
	return !isString || key.Value != "scope"
}

// scopeValue describes how a scope assignment's value reaches
// setTargetScopes.
type scopeValue uint8

const (
	scopeArray  scopeValue = iota // an array: as it is
	scopeEmpty                    // {}: clearTargetScopes
	scopeWords                    // a string literal: split now
	scopeString                   // a string: split at run time
	scopeEither                   // an array or a string: decided at run time
)

// scopeValueOf classifies the value of context.accessToken.scope = e.
func (a *analysis) scopeValueOf(e ast.Expr) scopeValue {
	if t, ok := e.(*ast.TableExpr); ok && len(t.Fields) == 0 {
		return scopeEmpty
	}
	if _, ok := e.(*ast.StringExpr); ok {
		return scopeWords
	}
	switch t := a.typeOf(e); {
	case t.k == kString:
		return scopeString
	case t.k == kTable && t.tableShape() == shapeArray:
		return scopeArray
	}
	return scopeEither
}

// readsScope reports whether the rule reads context.accessToken.scope
// anywhere but as the target of table.insert: the action then keeps a
// copy of the scopes it edits.
func (a *analysis) readsScope() bool {
	for _, r := range a.reads {
		if path, ok := a.contextPath(r); ok && isScopePath(path) && !a.insertTarget(r) {
			return true
		}
	}
	return false
}

// insertTarget reports whether e is the table of a table.insert call.
func (a *analysis) insertTarget(e ast.Expr) bool {
	for _, c := range a.calls {
		if a.builtin(c) == "table.insert" && len(c.Args) > 0 && c.Args[0] == e {
			return true
		}
	}
	return false
}
