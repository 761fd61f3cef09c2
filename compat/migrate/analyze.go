package migrate

import (
	"github.com/yuin/gopher-lua/ast"
)

// role is what a name stands for in a rule.
type role uint8

const (
	roleLocal    role = iota // a local variable of the rule
	roleParam                // a parameter of a function the rule defines
	roleUser                 // the rule's user parameter
	roleContext              // the rule's context parameter
	roleCallback             // the rule's callback parameter
	roleGlobal               // a global the rule file assigns
)

// variable is one local or file global of a rule.
type variable struct {
	name    string // in the rule
	js, lua string // in the generated actions
	role    role
	scope   *scope
	seq     int // declaration order
	sources []source
	writes  int // assignments besides the declaration
	reads   int // times the rule reads it
	// fn is the variable's function when it is declared with one and
	// never reassigned: calls to it have its return type.
	fn *ast.FunctionExpr
	// module is set for a global assigned outside the rule function: it
	// lives as long as the Lua state, as a JavaScript module variable does.
	module bool
	// declAt is the top-level statement a file global is declared by: the
	// first assignment to it, when that is a statement of its own at the
	// file's top level.
	declAt ast.Stmt
	t      typ
}

// sourceKind says how a variable gets a value.
type sourceKind uint8

const (
	srcExpr   sourceKind = iota // result pick of expr
	srcNil                      // declared without a value
	srcNumber                   // a numeric for's counter
	srcString                   // a gmatch match
	srcAny                      // anything: a parameter, an unknown iterator
	srcIndex                    // ipairs' index: a number
	srcElem                     // a value of the table expr
	srcKey                      // a key of the table expr
)

type source struct {
	kind sourceKind
	expr ast.Expr
	pick int // for srcExpr: which of a call's results
}

// scope is a Lua block: the locals declared in it.
type scope struct {
	parent *scope
	names  map[string]*variable
}

// indexWrite is t[k] = v, or table.insert(t, v) with a nil key.
type indexWrite struct {
	table, key, value ast.Expr
}

// analysis is what is known of a rule before printing it: which variable
// each name refers to and the types of values.
type analysis struct {
	file    string
	prelude []ast.Stmt        // statements before return function(...)
	rule    *ast.FunctionExpr // the rule function
	ruleRet *ast.ReturnStmt   // return function(...) ... end
	refs    map[*ast.IdentExpr]*variable
	decls   map[ast.Stmt][]*variable // locals a statement declares
	params  map[*ast.FunctionExpr][]*variable
	returns map[*ast.FunctionExpr][]*ast.ReturnStmt
	globals map[string]*variable
	vars    []*variable

	reads  []*ast.AttrGetExpr
	writes []indexWrite
	lens   []ast.Expr // operands of #
	calls  []*ast.FuncCallExpr
	funcs  []*ast.FunctionExpr

	loose    []*ast.IdentExpr // names bound to no local
	emptyAs  map[*ast.TableExpr]shape
	evidence map[*variable]shape
	returnT  map[*ast.FunctionExpr]typ
}

// analyze resolves the names of a rule and infers the types of its
// values.
func analyze(file string, prelude []ast.Stmt, ret *ast.ReturnStmt) *analysis {
	a := &analysis{
		file: file, prelude: prelude, ruleRet: ret,
		rule:    ret.Exprs[0].(*ast.FunctionExpr),
		refs:    map[*ast.IdentExpr]*variable{},
		decls:   map[ast.Stmt][]*variable{},
		params:  map[*ast.FunctionExpr][]*variable{},
		returns: map[*ast.FunctionExpr][]*ast.ReturnStmt{},
		globals: map[string]*variable{},
		returnT: map[*ast.FunctionExpr]typ{},
	}
	r := &resolver{a: a, cur: &scope{names: map[string]*variable{}}}
	r.block(prelude, false)
	r.exprs(ret.Exprs)
	r.link()
	a.loose = r.loose
	a.infer()
	a.shapeEmpties()
	a.name()
	return a
}

// shapeEmpties decides what each {} assigned to a variable is in
// JavaScript: an array when the variable is used as one.
func (a *analysis) shapeEmpties() {
	a.emptyAs = map[*ast.TableExpr]shape{}
	var mark func(e ast.Expr, s shape)
	mark = func(e ast.Expr, s shape) {
		switch e := e.(type) {
		case *ast.TableExpr:
			if len(e.Fields) == 0 {
				a.emptyAs[e] = s
			}
		case *ast.LogicalOpExpr:
			mark(e.Lhs, s)
			mark(e.Rhs, s)
		}
	}
	for _, v := range a.vars {
		for _, src := range v.sources {
			if src.kind == srcExpr && src.pick == 0 {
				mark(src.expr, v.t.tableShape())
			}
		}
	}
}

// resolver walks a rule once, in source order, binding names to variables.
type resolver struct {
	a      *analysis
	cur    *scope
	seq    int
	inRule bool
	fn     *ast.FunctionExpr
	loose  []*ast.IdentExpr // names not bound to a local
	nest   int              // blocks entered below the file's top level
	top    ast.Stmt         // the top-level statement being walked
}

func (r *resolver) push() {
	r.cur = &scope{parent: r.cur, names: map[string]*variable{}}
	r.nest++
}

func (r *resolver) pop() {
	r.cur = r.cur.parent
	r.nest--
}

// declare adds a local to the current block.
func (r *resolver) declare(name string, role role, src source) *variable {
	r.seq++
	v := &variable{name: name, role: role, scope: r.cur, seq: r.seq, sources: []source{src}}
	r.cur.names[name] = v
	r.a.vars = append(r.a.vars, v)
	return v
}

func (r *resolver) lookup(name string) *variable {
	for s := r.cur; s != nil; s = s.parent {
		if v, ok := s.names[name]; ok {
			return v
		}
	}
	return nil
}

// global returns the file global name, creating it on its first
// assignment.
func (r *resolver) global(name string) *variable {
	v, ok := r.a.globals[name]
	if !ok {
		r.seq++
		v = &variable{name: name, role: roleGlobal, seq: r.seq}
		r.a.globals[name] = v
		r.a.vars = append(r.a.vars, v)
	}
	if !r.inRule {
		v.module = true
	}
	return v
}

// declares reports whether the top-level statement being walked can
// declare the global id: it assigns id alone.
func (r *resolver) declares(id *ast.IdentExpr) bool {
	switch s := r.top.(type) {
	case *ast.AssignStmt:
		return len(s.Lhs) == 1 && s.Lhs[0] == id && len(s.Rhs) == 1
	case *ast.FuncDefStmt:
		return s.Name.Func == ast.Expr(id)
	}
	return false
}

// link binds names read before the assignment that made them file
// globals (a function body read before the file's top level assigns).
func (r *resolver) link() {
	for _, id := range r.loose {
		if v, ok := r.a.globals[id.Value]; ok {
			r.a.refs[id] = v
			v.reads++
		}
	}
	// A global read above the statement that would declare it stays a
	// declaration at the top: Lua would not see a local declared later.
	for id, v := range r.a.refs {
		if v.declAt != nil && id.Line() < v.declAt.Line() {
			v.declAt = nil
		}
	}
}

// usesGlobal reports whether the rule reads Rules' global table.
func (a *analysis) usesGlobal() bool {
	for _, id := range a.loose {
		if id.Value == "global" && a.unbound(id) {
			return true
		}
	}
	return false
}

// undeclaredGlobals returns the names of the file globals declared at
// the top of the file (module) or of the rule function (!module): those
// no single top-level statement declares.
func (a *analysis) undeclaredGlobals(module bool, name func(*variable) string) []string {
	var out []string
	for _, v := range a.vars {
		if v.role == roleGlobal && v.module == module && v.declAt == nil {
			out = append(out, name(v))
		}
	}
	return out
}

// walkStmts calls fn for each statement of stmts and of the blocks they
// hold, but not of the functions they define.
func walkStmts(stmts []ast.Stmt, fn func(ast.Stmt)) {
	for _, s := range stmts {
		fn(s)
		switch s := s.(type) {
		case *ast.DoBlockStmt:
			walkStmts(s.Stmts, fn)
		case *ast.WhileStmt:
			walkStmts(s.Stmts, fn)
		case *ast.RepeatStmt:
			walkStmts(s.Stmts, fn)
		case *ast.IfStmt:
			walkStmts(s.Then, fn)
			walkStmts(s.Else, fn)
		case *ast.NumberForStmt:
			walkStmts(s.Stmts, fn)
		case *ast.GenericForStmt:
			walkStmts(s.Stmts, fn)
		}
	}
}

func (r *resolver) block(stmts []ast.Stmt, scoped bool) {
	if scoped {
		r.push()
		defer r.pop()
	}
	for _, s := range stmts {
		r.stmt(s)
	}
}

func (r *resolver) stmt(s ast.Stmt) {
	if r.nest == 0 {
		r.top = s
	}
	switch s := s.(type) {
	case *ast.LocalAssignStmt:
		r.local(s)
	case *ast.AssignStmt:
		r.exprs(s.Rhs)
		for i, lhs := range s.Lhs {
			r.assign(lhs, valueAt(s.Rhs, i))
		}
	case *ast.FuncCallStmt:
		r.expr(s.Expr)
	case *ast.DoBlockStmt:
		r.block(s.Stmts, true)
	case *ast.WhileStmt:
		r.expr(s.Condition)
		r.block(s.Stmts, true)
	case *ast.RepeatStmt:
		// The condition sees the body's locals.
		r.push()
		r.block(s.Stmts, false)
		r.expr(s.Condition)
		r.pop()
	case *ast.IfStmt:
		r.expr(s.Condition)
		r.block(s.Then, true)
		r.block(s.Else, true)
	case *ast.NumberForStmt:
		r.exprs([]ast.Expr{s.Init, s.Limit})
		if s.Step != nil {
			r.expr(s.Step)
		}
		r.push()
		r.a.decls[s] = []*variable{r.declare(s.Name, roleLocal, source{kind: srcNumber})}
		r.block(s.Stmts, false)
		r.pop()
	case *ast.GenericForStmt:
		r.genericFor(s)
	case *ast.FuncDefStmt:
		r.funcDef(s)
	case *ast.ReturnStmt:
		r.exprs(s.Exprs)
		if r.fn != nil {
			r.a.returns[r.fn] = append(r.a.returns[r.fn], s)
		}
	}
}

// valueAt returns the source of the i-th target of an assignment from
// exprs, where the last expression may give several values.
func valueAt(exprs []ast.Expr, i int) source {
	switch {
	case i < len(exprs)-1 || (i == len(exprs)-1 && !multiValued(exprs[i])):
		return source{kind: srcExpr, expr: exprs[i]}
	case len(exprs) > 0 && multiValued(exprs[len(exprs)-1]):
		return source{kind: srcExpr, expr: exprs[len(exprs)-1], pick: i - len(exprs) + 1}
	}
	return source{kind: srcNil}
}

// multiValued reports whether e may give several values where a list
// of values is expected: an unparenthesized call or ....
func multiValued(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.FuncCallExpr:
		return !e.AdjustRet
	case *ast.Comma3Expr:
		return !e.AdjustRet
	}
	return false
}

func (r *resolver) local(s *ast.LocalAssignStmt) {
	// local function f: f is visible in its own body.
	if fn, ok := soleFunction(s); ok && s.LastLine() != 0 {
		v := r.declare(s.Names[0], roleLocal, source{kind: srcExpr, expr: fn})
		v.fn = fn
		r.a.decls[s] = []*variable{v}
		r.expr(fn)
		return
	}
	r.exprs(s.Exprs)
	vars := make([]*variable, len(s.Names))
	for i, name := range s.Names {
		vars[i] = r.declare(name, roleLocal, valueAt(s.Exprs, i))
	}
	if fn, ok := soleFunction(s); ok {
		vars[0].fn = fn
	}
	r.a.decls[s] = vars
}

// soleFunction returns the function a one-name local statement declares.
func soleFunction(s *ast.LocalAssignStmt) (*ast.FunctionExpr, bool) {
	if len(s.Names) != 1 || len(s.Exprs) != 1 {
		return nil, false
	}
	fn, ok := s.Exprs[0].(*ast.FunctionExpr)
	return fn, ok
}

// assign binds the target of an assignment and records what it gets.
func (r *resolver) assign(lhs ast.Expr, src source) {
	switch lhs := lhs.(type) {
	case *ast.IdentExpr:
		v := r.lookup(lhs.Value)
		if v == nil {
			v = r.global(lhs.Value)
			if r.nest == 0 && r.declares(lhs) {
				v.declAt = r.top
			}
		}
		if len(v.sources) > 0 {
			v.writes++
		}
		v.sources = append(v.sources, src)
		r.a.refs[lhs] = v
	case *ast.AttrGetExpr:
		r.expr(lhs.Object)
		r.expr(lhs.Key)
		r.a.writes = append(r.a.writes, indexWrite{table: lhs.Object, key: lhs.Key, value: src.expr})
	}
}

func (r *resolver) genericFor(s *ast.GenericForStmt) {
	r.exprs(s.Exprs)
	r.push()
	defer r.pop()
	vars := make([]*variable, len(s.Names))
	for i, name := range s.Names {
		vars[i] = r.declare(name, roleLocal, r.loopSource(s, i))
	}
	r.a.decls[s] = vars
	r.block(s.Stmts, false)
}

// loopSource returns what the i-th name of a generic for takes.
func (r *resolver) loopSource(s *ast.GenericForStmt, i int) source {
	call, ok := s.Exprs[0].(*ast.FuncCallExpr)
	if len(s.Exprs) != 1 || !ok {
		return source{kind: srcAny}
	}
	fn := r.a.builtin(call)
	switch {
	case fn == "ipairs" && len(call.Args) > 0 && i == 0:
		return source{kind: srcIndex}
	case fn == "ipairs" && len(call.Args) > 0 && i == 1:
		return source{kind: srcElem, expr: call.Args[0]}
	case fn == "pairs" && len(call.Args) > 0 && i == 0:
		return source{kind: srcKey, expr: call.Args[0]}
	case fn == "pairs" && len(call.Args) > 0 && i == 1:
		return source{kind: srcElem, expr: call.Args[0]}
	case fn == "string.gmatch":
		return source{kind: srcString}
	}
	return source{kind: srcAny}
}

func (r *resolver) funcDef(s *ast.FuncDefStmt) {
	src := source{kind: srcExpr, expr: s.Func}
	if s.Name.Func == nil { // function t:m(): a method
		r.expr(s.Name.Receiver)
		key := &ast.StringExpr{Value: s.Name.Method}
		r.a.writes = append(r.a.writes, indexWrite{table: s.Name.Receiver, key: key, value: s.Func})
		r.function(s.Func, "self")
		return
	}
	r.assign(s.Name.Func, src)
	if id, ok := s.Name.Func.(*ast.IdentExpr); ok {
		if v := r.a.refs[id]; len(v.sources) == 1 {
			v.fn = s.Func
		}
	}
	r.function(s.Func, "")
}

// function walks a function; self, when set, is its implicit first
// parameter.
func (r *resolver) function(fn *ast.FunctionExpr, self string) {
	outerFn, outerRule := r.fn, r.inRule
	r.fn = fn
	if fn == r.a.rule {
		r.inRule = true
	}
	r.push()
	names := fn.ParList.Names
	if self != "" {
		names = append([]string{self}, names...)
	}
	vars := make([]*variable, len(names))
	for i, name := range names {
		kind := roleParam
		if fn == r.a.rule && i < 3 {
			kind = []role{roleUser, roleContext, roleCallback}[i]
		}
		vars[i] = r.declare(name, kind, source{kind: srcAny})
	}
	r.a.params[fn] = vars
	r.a.funcs = append(r.a.funcs, fn)
	r.block(fn.Stmts, false)
	r.pop()
	r.fn, r.inRule = outerFn, outerRule
}

func (r *resolver) exprs(es []ast.Expr) {
	for _, e := range es {
		r.expr(e)
	}
}

func (r *resolver) expr(e ast.Expr) {
	switch e := e.(type) {
	case *ast.IdentExpr:
		if v := r.lookup(e.Value); v != nil {
			r.a.refs[e] = v
			v.reads++
		} else {
			r.loose = append(r.loose, e)
		}
	case *ast.AttrGetExpr:
		r.expr(e.Object)
		r.expr(e.Key)
		r.a.reads = append(r.a.reads, e)
	case *ast.FuncCallExpr:
		if e.Func != nil {
			r.expr(e.Func)
		}
		if e.Receiver != nil {
			r.expr(e.Receiver)
		}
		r.exprs(e.Args)
		r.a.calls = append(r.a.calls, e)
		if r.a.builtin(e) == "table.insert" && len(e.Args) >= 2 {
			r.a.writes = append(r.a.writes, indexWrite{table: e.Args[0], value: e.Args[len(e.Args)-1]})
		}
	case *ast.LogicalOpExpr:
		r.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.RelationalOpExpr:
		r.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.StringConcatOpExpr:
		r.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.ArithmeticOpExpr:
		r.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.UnaryMinusOpExpr:
		r.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		r.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		r.expr(e.Expr)
		r.a.lens = append(r.a.lens, e.Expr)
	case *ast.FunctionExpr:
		r.function(e, "")
	case *ast.TableExpr:
		for _, f := range e.Fields {
			if f.Key != nil {
				r.expr(f.Key)
			}
			r.expr(f.Value)
		}
	}
}
