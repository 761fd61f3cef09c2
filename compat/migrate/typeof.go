package migrate

import (
	"strconv"

	"github.com/yuin/gopher-lua/ast"
)

// baseFunctions are the base library functions a rule may call, and the
// Auth0 error constructor rulesgate adds.
var baseFunctions = map[string]bool{
	"tostring": true, "tonumber": true, "type": true, "ipairs": true, "pairs": true,
	"print": true, "error": true, "assert": true, "pcall": true, "xpcall": true,
	"select": true, "unpack": true, "next": true, "rawget": true, "rawset": true,
	"rawequal": true, "setmetatable": true, "getmetatable": true,
	"UnauthorizedError": true,
}

// modules are the library tables of the sandbox.
var modules = map[string]bool{"string": true, "table": true, "math": true, "json": true}

// stringMethods are the string library functions s:name() reaches.
var stringMethods = map[string]bool{
	"lower": true, "upper": true, "sub": true, "len": true, "find": true,
	"format": true, "rep": true, "gmatch": true, "gsub": true, "match": true,
	"byte": true, "char": true, "reverse": true,
}

// builtinTypes are the types library functions return.
var builtinTypes = map[string]typ{
	"string.lower": stringType, "string.upper": stringType, "string.sub": stringType,
	"string.rep": stringType, "string.format": stringType, "string.reverse": stringType,
	"string.char": stringType, "string.gsub": stringType, "string.len": numberType,
	"string.byte": numberType.orNil(), "string.find": numberType.orNil(),
	"string.match": stringType.orNil(), "string.gmatch": funcType,
	"tostring": stringType, "tonumber": numberType.orNil(), "type": stringType,
	"table.concat": stringType, "json.encode": stringType,
	"ipairs": funcType, "pairs": funcType, "print": nilType, "rawequal": boolType,
	"UnauthorizedError": {k: kTable, s: shapeObject},
	"math.floor":        numberType, "math.ceil": numberType, "math.max": numberType,
	"math.min": numberType, "math.abs": numberType, "math.sqrt": numberType,
	"math.fmod": numberType, "math.huge": numberType, "math.pi": numberType,
}

// builtin returns the library function call calls ("string.lower",
// "tostring"), or "" when it calls something else. s:name() calls the
// string library.
func (a *analysis) builtin(call *ast.FuncCallExpr) string {
	if call.Receiver != nil {
		if stringMethods[call.Method] {
			return "string." + call.Method
		}
		return ""
	}
	return a.libraryName(call.Func)
}

// libraryName returns the name of the library value e reads ("math.huge",
// "pairs"), or "".
func (a *analysis) libraryName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.IdentExpr:
		if a.unbound(e) && baseFunctions[e.Value] {
			return e.Value
		}
	case *ast.AttrGetExpr:
		obj, ok := e.Object.(*ast.IdentExpr)
		key, isString := e.Key.(*ast.StringExpr)
		if ok && isString && a.unbound(obj) && modules[obj.Value] {
			return obj.Value + "." + key.Value
		}
	}
	return ""
}

// unbound reports whether id is a global the rule file never assigns: a
// library, a sandbox global, or a name only another rule could define.
func (a *analysis) unbound(id *ast.IdentExpr) bool { return a.refs[id] == nil }

// isGlobal reports whether e is the sandbox global name.
func (a *analysis) isGlobal(e ast.Expr, name string) bool {
	id, ok := e.(*ast.IdentExpr)
	return ok && id.Value == name && a.unbound(id)
}

// typeOf returns what the analysis knows of the value of e.
func (a *analysis) typeOf(e ast.Expr) typ {
	switch e := e.(type) {
	case *ast.NilExpr:
		return nilType
	case *ast.TrueExpr:
		return typ{k: kTrue}
	case *ast.FalseExpr:
		return typ{k: kFalse}
	case *ast.NumberExpr:
		return numberType
	case *ast.StringExpr:
		return stringType
	case *ast.IdentExpr:
		return a.identType(e)
	case *ast.AttrGetExpr:
		return a.indexType(e)
	case *ast.FuncCallExpr:
		return a.callType(e)
	case *ast.LogicalOpExpr:
		if e.Operator == "and" {
			return union(a.typeOf(e.Lhs).falsy(), a.typeOf(e.Rhs))
		}
		return union(a.typeOf(e.Lhs).truthy(), a.typeOf(e.Rhs))
	case *ast.RelationalOpExpr, *ast.UnaryNotOpExpr:
		return boolType
	case *ast.StringConcatOpExpr:
		return stringType
	case *ast.ArithmeticOpExpr, *ast.UnaryMinusOpExpr, *ast.UnaryLenOpExpr:
		return numberType
	case *ast.FunctionExpr:
		return funcType
	case *ast.TableExpr:
		return a.tableType(e)
	}
	return anyType
}

func (a *analysis) identType(e *ast.IdentExpr) typ {
	if v := a.refs[e]; v != nil {
		return v.t
	}
	switch e.Value {
	case "configuration":
		return objectOf(stringType)
	case "global":
		return typ{k: kTable, s: shapeObject, elem: &anyType}
	}
	if baseFunctions[e.Value] {
		return funcType
	}
	return anyType
}

func (a *analysis) indexType(e *ast.AttrGetExpr) typ {
	if path, ok := a.contextPath(e); ok {
		return contextType(path)
	}
	if a.isGlobal(e.Object, "configuration") {
		return stringType.orNil() // Auth0 does: secrets are strings
	}
	if name := a.libraryName(e); name != "" {
		if t, ok := builtinTypes[name]; ok && (name == "math.huge" || name == "math.pi") {
			return t
		}
		return funcType
	}
	return a.typeOf(e.Object).element()
}

func (a *analysis) callType(c *ast.FuncCallExpr) typ {
	if name := a.builtin(c); name != "" {
		if t, ok := builtinTypes[name]; ok {
			return t
		}
		return anyType
	}
	if id, ok := c.Func.(*ast.IdentExpr); ok {
		if v := a.refs[id]; v != nil && v.fn != nil && v.writes == 0 {
			return a.returnT[v.fn]
		}
	}
	return anyType
}

// tableType returns the type of a table constructor: an array for
// positional fields (or keys 1..n), an object for string keys.
func (a *analysis) tableType(e *ast.TableExpr) typ {
	if len(e.Fields) == 0 {
		return typ{k: kTable, s: shapeEmpty}
	}
	var elem typ
	s := shapeNone
	for i, f := range e.Fields {
		elem = union(elem, a.typeOf(f.Value))
		s = mergeShape(s, fieldShape(f, i))
	}
	return typ{k: kTable, s: s, elem: &elem}
}

// fieldShape returns the shape the i-th field of a constructor gives.
func fieldShape(f *ast.Field, i int) shape {
	switch k := f.Key.(type) {
	case nil:
		return shapeArray
	case *ast.StringExpr:
		return shapeObject
	case *ast.NumberExpr:
		if n, err := strconv.ParseFloat(k.Value, 64); err == nil && n == float64(i+1) {
			return shapeArray
		}
	}
	return shapeMixed
}

// keyShape returns the shape indexing with key shows: an array for a
// number, an object for a string, nothing when the key may be either.
func (a *analysis) keyShape(key ast.Expr) shape {
	switch a.typeOf(key).k {
	case kNumber:
		return shapeArray
	case kString:
		return shapeObject
	}
	return shapeNone
}

// infer computes the types of every variable and function, repeating
// until nothing changes: types only grow, so this ends.
func (a *analysis) infer() {
	for i := 0; i < 50; i++ {
		a.evidence = a.collectEvidence()
		changed := false
		for _, fn := range a.funcs {
			t := a.returnType(fn)
			if old, ok := a.returnT[fn]; !ok || !old.equal(t) {
				a.returnT[fn] = t
				changed = true
			}
		}
		for _, v := range a.vars {
			if t := a.varType(v); !t.equal(v.t) {
				v.t = t
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// collectEvidence returns how the rule uses each table variable.
func (a *analysis) collectEvidence() map[*variable]shape {
	ev := map[*variable]shape{}
	add := func(e ast.Expr, s shape) {
		if id, ok := e.(*ast.IdentExpr); ok && a.refs[id] != nil {
			ev[a.refs[id]] = mergeShape(ev[a.refs[id]], s)
		}
	}
	for _, r := range a.reads {
		add(r.Object, a.keyShape(r.Key))
	}
	for _, w := range a.writes {
		if w.key == nil {
			add(w.table, shapeArray)
		} else {
			add(w.table, a.keyShape(w.key))
		}
	}
	for _, e := range a.lens {
		if a.typeOf(e).may(kTable) {
			add(e, shapeArray)
		}
	}
	for _, c := range a.calls {
		switch a.builtin(c) {
		case "ipairs", "table.insert", "table.remove", "table.concat", "table.sort", "unpack":
			if len(c.Args) > 0 {
				add(c.Args[0], shapeArray)
			}
		}
	}
	return ev
}

// varType returns the type of v from its values and its uses.
func (a *analysis) varType(v *variable) typ {
	switch v.role {
	case roleUser, roleContext:
		return typ{k: kTable, s: shapeObject}
	case roleCallback:
		return funcType
	case roleParam:
		return anyType
	}
	var t typ
	for _, s := range v.sources {
		t = union(t, a.sourceType(s))
	}
	if t.may(kTable) {
		t.s = mergeShape(t.s, a.evidence[v])
		for _, w := range a.writes {
			if id, ok := w.table.(*ast.IdentExpr); ok && a.refs[id] == v && w.value != nil {
				e := union(typ{}, a.typeOf(w.value))
				if t.elem != nil {
					e = union(*t.elem, e)
				}
				t.elem = &e
			}
		}
	}
	return t
}

func (a *analysis) sourceType(s source) typ {
	switch s.kind {
	case srcExpr:
		if s.pick > 0 {
			return anyType
		}
		return a.typeOf(s.expr)
	case srcNil:
		return nilType
	case srcNumber, srcIndex:
		return numberType
	case srcString:
		return stringType
	case srcElem:
		return a.typeOf(s.expr).element().truthy()
	case srcKey:
		switch a.typeOf(s.expr).tableShape() {
		case shapeArray:
			return numberType
		case shapeObject:
			return stringType
		}
		return typ{k: kString | kNumber}
	}
	return anyType
}

// returnType returns the type of what fn returns: its first result, or
// nil when it may end without returning.
func (a *analysis) returnType(fn *ast.FunctionExpr) typ {
	var t typ
	for _, r := range a.returns[fn] {
		if len(r.Exprs) == 0 {
			t = union(t, nilType)
			continue
		}
		t = union(t, a.typeOf(r.Exprs[0]))
	}
	if !endsInReturn(fn.Stmts) {
		t = union(t, nilType)
	}
	return t
}

// endsInReturn reports whether every path through stmts ends in a return.
func endsInReturn(stmts []ast.Stmt) bool {
	if len(stmts) == 0 {
		return false
	}
	switch s := stmts[len(stmts)-1].(type) {
	case *ast.ReturnStmt:
		return true
	case *ast.IfStmt:
		return endsInReturn(s.Then) && endsInReturn(s.Else)
	case *ast.DoBlockStmt:
		return endsInReturn(s.Stmts)
	}
	return false
}
