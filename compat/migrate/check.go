package migrate

import (
	"sort"
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// sandboxGlobals are the globals a rule may read without assigning them.
var sandboxGlobals = map[string]bool{"configuration": true, "global": true, "_VERSION": true}

// use is how an expression's value is used, for the checks on the scope
// table: reading it is fine, keeping it where edits could reach it is not.
type use uint8

const (
	useValue  use = iota // kept, passed on, stored
	useRead              // indexed, measured, iterated, compared
	useAlias             // assigned to a variable, which then names the scope table
	useCallee            // called
)

// checker finds what neither action can do as the rule did. Its issues
// hold for both translations; each printer adds those only its language
// has.
type checker struct {
	a       *analysis
	issues  map[ast.Stmt][]Issue // by the innermost statement
	cur     ast.Stmt
	fn      *ast.FunctionExpr // the function being walked; nil at the top level
	aliases map[*variable]bool
	// inRule is set inside the rule function and the functions it defines.
	inRule bool
	// stringScope is set once the rule assigned the scope a string: Rules
	// then read the string back, the action an array.
	stringScope bool
}

// check returns the issues that hold for both translations, by statement;
// those of the rule as a whole are under the rule's return statement.
func (a *analysis) check() map[ast.Stmt][]Issue {
	c := &checker{a: a, issues: map[ast.Stmt][]Issue{}, aliases: map[*variable]bool{}}
	c.block(a.prelude, false)
	c.cur = a.ruleRet
	c.fn = a.rule
	c.inRule = true
	c.block(a.rule.Stmts, true)
	if !a.callsBack(a.rule.Stmts) {
		c.report(a.rule, "function(user, context, callback)",
			"a path reaches the end of the rule without calling callback: Rules fail the "+
				"request there (rulesgate at once, Auth0 after its timeout); the action goes on")
	}
	return c.issues
}

func (c *checker) report(n ast.PositionHolder, construct, reason string) {
	c.issues[c.cur] = append(c.issues[c.cur], Issue{
		File: c.a.file, Line: n.Line(), Construct: construct, Reason: reason,
	})
}

func (c *checker) block(stmts []ast.Stmt, tail bool) {
	for i, s := range stmts {
		var next ast.Stmt
		if i+1 < len(stmts) {
			next = stmts[i+1]
		}
		// A return right after a callback ends the rule as Rules expect.
		afterCallback := i > 0 && c.fn == c.a.rule && isBareReturn(s) && c.callsBackAt(stmts[i-1])
		c.stmt(s, tail && i == len(stmts)-1, next, afterCallback)
	}
}

func (c *checker) stmt(s ast.Stmt, tail bool, next ast.Stmt, afterCallback bool) {
	outer := c.cur
	c.cur = s
	defer func() { c.cur = outer }()

	if c.fn == c.a.rule {
		if sp := c.a.classify(s); sp.kind != spNone {
			c.special(s, sp, tail, next)
			return
		}
	}
	switch s := s.(type) {
	case *ast.LocalAssignStmt:
		for i, v := range c.a.decls[s] {
			c.bind(v, valueAt(s.Exprs, i))
		}
		c.extra(s.Exprs, len(s.Names))
	case *ast.AssignStmt:
		c.assign(s)
	case *ast.FuncCallStmt:
		c.expr(s.Expr, useValue)
	case *ast.DoBlockStmt:
		c.block(s.Stmts, tail)
	case *ast.WhileStmt:
		c.expr(s.Condition, useRead)
		c.block(s.Stmts, false)
	case *ast.RepeatStmt:
		c.block(s.Stmts, false)
		c.expr(s.Condition, useRead)
	case *ast.IfStmt:
		c.expr(s.Condition, useRead)
		c.block(s.Then, tail)
		c.block(s.Else, tail)
	case *ast.NumberForStmt:
		c.exprs([]ast.Expr{s.Init, s.Limit, s.Step}, useValue)
		c.block(s.Stmts, false)
	case *ast.GenericForStmt:
		c.exprs(s.Exprs, useValue)
		c.block(s.Stmts, false)
	case *ast.FuncDefStmt:
		if s.Name.Func != nil {
			c.target(s.Name.Func)
		}
		c.expr(s.Func, useValue)
	case *ast.ReturnStmt:
		if c.fn == c.a.rule && !afterCallback {
			c.report(s, "return", "the rule returns without calling callback: Rules fail the "+
				"request; the action goes on")
		}
		c.exprs(s.Exprs, useValue)
	}
}

// extra checks the values of a list beyond its targets: they are
// evaluated and dropped.
func (c *checker) extra(exprs []ast.Expr, targets int) {
	for i := targets; i < len(exprs); i++ {
		c.expr(exprs[i], useValue)
	}
}

// bind checks a value given to variable v. A variable given the scope
// table names it: edits through it reach the token in Rules.
//
// TODO(migrate): names are followed in source order; in a loop, an edit
// written above the assignment that makes a variable name the scope table
// runs after it from the second turn on, and is not reported.
func (c *checker) bind(v *variable, src source) {
	if src.kind != srcExpr || src.pick > 0 {
		return
	}
	if c.isScope(src.expr) {
		c.aliases[v] = true
		c.expr(src.expr, useAlias)
		return
	}
	delete(c.aliases, v)
	c.expr(src.expr, useValue)
}

func (c *checker) assign(s *ast.AssignStmt) {
	for i, lhs := range s.Lhs {
		src := valueAt(s.Rhs, i)
		if id, ok := lhs.(*ast.IdentExpr); ok && c.a.refs[id] != nil {
			c.bind(c.a.refs[id], src)
			continue
		}
		c.target(lhs)
		if src.kind == srcExpr && src.pick == 0 {
			c.expr(src.expr, useValue)
		}
	}
	c.extra(s.Rhs, len(s.Lhs))
}

// target checks the target of an assignment that is not a plain variable.
func (c *checker) target(lhs ast.Expr) {
	t, ok := lhs.(*ast.AttrGetExpr)
	if !ok {
		return
	}
	switch {
	case c.a.rootedAtContext(t):
		c.report(t, luaSource(t), "writes to the context: only context.accessToken.scope and "+
			"custom claims (context.accessToken[name] = value, alone in a statement) carry over to an action")
		return
	case c.a.isGlobal(t.Object, "configuration"):
		c.report(t, luaSource(t), "configuration is read-only: the write fails the rule in rulesgate, "+
			"and an action's secrets are read-only")
		return
	case c.isScope(t.Object):
		c.report(t, luaSource(t), "edits the scope table in place: use table.insert(context.accessToken.scope, s) "+
			"or assign context.accessToken.scope, which map to api.transaction")
	}
	c.expr(t.Object, useRead)
	c.expr(t.Key, useValue)
}

// isScope reports whether e is the scope table: context.accessToken.scope
// or a variable that names it.
func (c *checker) isScope(e ast.Expr) bool {
	if id, ok := e.(*ast.IdentExpr); ok {
		return c.aliases[c.a.refs[id]]
	}
	return c.a.isScopeRead(e)
}

// special checks a statement that maps to the action API.
func (c *checker) special(s ast.Stmt, sp special, tail bool, next ast.Stmt) {
	switch sp.kind {
	case spSetScopes:
		if id, ok := sp.arg.(*ast.IdentExpr); ok && c.a.refs[id] != nil {
			c.aliases[c.a.refs[id]] = true
		}
		c.expr(sp.arg, useAlias)
		switch c.a.scopeValueOf(sp.arg) {
		case scopeWords, scopeString, scopeEither:
			c.stringScope = true
		default:
			c.stringScope = false
		}
		return
	case spClaim:
		c.expr(sp.key, useValue)
		c.expr(sp.arg, useValue)
		return
	case spAddScope:
		c.expr(sp.arg, useValue)
		return
	}

	if !sp.ret && !tail && !isBareReturn(next) {
		c.report(sp.call, luaSource(sp.call), "code after this call keeps running in Rules; "+
			"the action returns here")
	}
	switch sp.kind {
	case spProceed:
		c.proceedArgs(sp.call)
	case spFail:
		c.report(sp.call, luaSource(sp.call), "callback with an error other than UnauthorizedError: "+
			"Rules fail the request (500 server_error); the action denies it with server_error")
		c.expr(sp.arg, useValue)
	case spDeny:
		if sp.arg != nil {
			c.expr(sp.arg, useValue)
		}
	}
}

// proceedArgs checks callback(nil, user, context): an action carries over
// only what the rule did to context.accessToken.
func (c *checker) proceedArgs(call *ast.FuncCallExpr) {
	for i, want := range []role{roleUser, roleContext} {
		if len(call.Args) <= i+1 {
			return
		}
		id, ok := call.Args[i+1].(*ast.IdentExpr)
		if !ok || c.a.refs[id] == nil || c.a.refs[id].role != want {
			c.report(call, luaSource(call), "callback with a new user or context: an action keeps "+
				"only the scopes and claims set through context.accessToken")
			return
		}
	}
}

// callsBackAt reports whether s calls callback, directly in the rule.
func (c *checker) callsBackAt(s ast.Stmt) bool {
	switch c.a.classify(s).kind {
	case spProceed, spDeny, spFail:
		return true
	}
	return false
}

func isBareReturn(s ast.Stmt) bool {
	r, ok := s.(*ast.ReturnStmt)
	return ok && len(r.Exprs) == 0
}

// callsBack reports whether every path through stmts ends by calling
// callback or raising an error.
func (a *analysis) callsBack(stmts []ast.Stmt) bool {
	if len(stmts) == 0 {
		return false
	}
	last := stmts[len(stmts)-1]
	switch sp := a.classify(last); sp.kind {
	case spProceed, spDeny, spFail:
		return true
	}
	switch s := last.(type) {
	case *ast.FuncCallStmt:
		call, ok := s.Expr.(*ast.FuncCallExpr)
		return ok && a.builtin(call) == "error"
	case *ast.IfStmt:
		return a.callsBack(s.Then) && a.callsBack(s.Else)
	case *ast.DoBlockStmt:
		return a.callsBack(s.Stmts)
	}
	return false
}

func (c *checker) exprs(es []ast.Expr, u use) {
	for _, e := range es {
		if e != nil {
			c.expr(e, u)
		}
	}
}

func (c *checker) expr(e ast.Expr, u use) {
	switch e := e.(type) {
	case *ast.IdentExpr:
		c.ident(e, u)
	case *ast.AttrGetExpr:
		c.index(e, u)
	case *ast.FuncCallExpr:
		c.call(e)
	case *ast.LogicalOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs}, useValue)
	case *ast.RelationalOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs}, useRead)
	case *ast.StringConcatOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs}, useRead)
	case *ast.ArithmeticOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs}, useRead)
	case *ast.UnaryMinusOpExpr:
		c.expr(e.Expr, useRead)
	case *ast.UnaryNotOpExpr:
		c.expr(e.Expr, useRead)
	case *ast.UnaryLenOpExpr:
		c.expr(e.Expr, useRead)
	case *ast.FunctionExpr:
		outer := c.fn
		c.fn = e
		c.block(e.Stmts, false)
		c.fn = outer
	case *ast.TableExpr:
		for _, f := range e.Fields {
			c.exprs([]ast.Expr{f.Key, f.Value}, useValue)
		}
	}
}

func (c *checker) ident(e *ast.IdentExpr, u use) {
	v := c.a.refs[e]
	switch {
	case v != nil && v.role == roleUser:
		c.report(e, e.Value, "client credentials have no user: user is an empty table in rulesgate, "+
			"and an action has no user at all")
	case v != nil && v.role == roleContext:
		c.report(e, e.Value, "the context as a whole has no counterpart in an action: read its fields")
	case v != nil && v.role == roleCallback && u != useCallee:
		c.report(e, e.Value, "callback used as a value: only calls to it map to an action")
	case v != nil && u == useValue && c.aliases[v]:
		c.report(e, e.Value, scopeValueReason)
	case v != nil:
	case e.Value == "global":
		c.report(e, e.Value, "global has no equivalent in an action: a module-level table "+
			"stands in for it; use api.cache for what must outlive a container")
	case baseFunctions[e.Value] || modules[e.Value] || sandboxGlobals[e.Value]:
	default:
		c.report(e, e.Value, "a global the file never sets: in rulesgate it comes from another rule "+
			"of the same request, or is nil; an action cannot see other actions' variables")
	}
}

const scopeValueReason = "the scope table used as a value: edits made through it reach the token in " +
	"Rules, but not in an action, where only api.transaction changes the scopes"

func (c *checker) index(e *ast.AttrGetExpr, u use) {
	if c.a.rootedAtContext(e) {
		c.contextIndex(e, u)
		return
	}
	if c.a.isGlobal(e.Object, "configuration") {
		if !c.inRule {
			c.report(e, luaSource(e), "configuration read outside the rule function: an action "+
				"reads its secrets from the event it is called with")
		}
		c.expr(e.Key, useValue)
		return
	}
	c.expr(e.Object, useRead)
	c.expr(e.Key, useValue)
}

// contextIndex checks a read below context.
func (c *checker) contextIndex(e *ast.AttrGetExpr, u use) {
	path, constant := c.a.contextPath(e)
	joined := strings.Join(path, ".")
	switch {
	case !constant:
		// context.request.body[k] reads a mapped field; context[k] does not.
		if objPath, ok := c.a.contextPath(e.Object); ok && (mappedPrefix(objPath) || isScopePath(objPath)) {
			c.contextIndex(e.Object.(*ast.AttrGetExpr), useRead)
			c.expr(e.Key, useValue)
			return
		}
		c.report(e, luaSource(e), "a context member chosen at run time has no counterpart in an action")
	case isScopePath(path):
		if u == useValue {
			c.report(e, luaSource(e), scopeValueReason)
		}
		if c.stringScope {
			c.report(e, luaSource(e), "reads the scope after assigning it a string: Rules read "+
				"the string back, the action an array of its words")
		}
	case isClaimTarget(path):
		c.report(e, luaSource(e), "reads a custom claim: an action cannot read the claims "+
			"it or an earlier action set")
	case mappedPrefix(path):
	case contextContainers[joined]:
		c.report(e, luaSource(e), "context."+joined+" as a whole has no counterpart in an action: read its fields")
	default:
		c.report(e, luaSource(e), "context."+path[0]+" has no counterpart in a Credentials "+
			"Exchange Action")
	}
}

// mappedPrefix reports whether path or one of its prefixes maps to an
// event field.
func mappedPrefix(path []string) bool {
	for i := len(path); i > 0; i-- {
		if _, ok := contextFields[strings.Join(path[:i], ".")]; ok {
			return true
		}
	}
	return false
}

func (c *checker) call(e *ast.FuncCallExpr) {
	name := c.a.builtin(e)
	switch {
	case c.a.isCallback(e.Func):
		c.report(e, luaSource(e), "callback called inside an expression or a nested function: "+
			"the action can only return from its own body")
	case name == "UnauthorizedError":
		c.report(e, luaSource(e), "UnauthorizedError outside callback(...) or error(...): "+
			"only those map to api.access.deny")
	case name == "error" && len(e.Args) > 0 && c.isUnauthorized(e.Args[0]):
		c.report(e, luaSource(e), "raises UnauthorizedError inside a nested function: "+
			"the action can only deny from its own body")
		c.exprs(e.Args[0].(*ast.FuncCallExpr).Args, useValue)
		return
	case (name == "table.insert" || name == "table.remove" || name == "table.sort") &&
		len(e.Args) > 0 && c.isScope(e.Args[0]):
		c.report(e, luaSource(e), "edits the scope table in place: only "+
			"table.insert(context.accessToken.scope, s), alone in a statement, maps to api.transaction")
		c.exprs(e.Args[1:], useValue)
		return
	}

	if e.Func != nil && !c.a.isCallback(e.Func) {
		c.expr(e.Func, useCallee)
	}
	if e.Receiver != nil {
		c.expr(e.Receiver, useRead)
	}
	argUse := useValue
	switch name {
	case "ipairs", "pairs", "table.concat", "tostring", "type", "next", "json.encode":
		argUse = useRead
	}
	for i, arg := range e.Args {
		if i > 0 {
			argUse = useValue
		}
		c.expr(arg, argUse)
	}
}

func (c *checker) isUnauthorized(e ast.Expr) bool {
	_, ok := c.a.unauthorized(e)
	return ok
}

// sortIssues orders issues by line, then construct.
func sortIssues(issues []Issue) {
	sort.SliceStable(issues, func(i, j int) bool {
		if issues[i].Line != issues[j].Line {
			return issues[i].Line < issues[j].Line
		}
		return issues[i].Construct < issues[j].Construct
	})
}
