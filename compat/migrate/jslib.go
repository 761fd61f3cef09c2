package migrate

import (
	"strconv"
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// jsHelpers are the functions generated actions define when they need
// Lua's behaviour where JavaScript's differs, in the order they are
// written.
var jsHelpers = []struct{ name, code string }{
	{"luaTruthy", `// luaTruthy is Lua's truth: only nil and false are false.
function luaTruthy(v) {
  return v !== undefined && v !== null && v !== false;
}`},
	{"luaToString", `// luaToString is Lua's tostring for the values an action sees.
function luaToString(v) {
  return v === undefined || v === null ? 'nil' : String(v);
}`},
	{"luaToNumber", `// luaToNumber is rulesgate's tonumber: a decimal or 0x integer, or a
// number with a decimal point; anything else is nil.
function luaToNumber(v) {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/^[ \t\n]+|[ \t\n]+$/g, '');
  if (s.includes('.')) {
    return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : undefined;
  }
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  return /^[+-]?\d+$/.test(s) ? Number(s) : undefined;
}`},
	{"luaType", `// luaType is Lua's type() for the values an action sees.
function luaType(v) {
  if (v === undefined || v === null) return 'nil';
  return typeof v === 'object' ? 'table' : typeof v;
}`},
	{"luaMod", `// luaMod is Lua's %: the result takes the divisor's sign.
function luaMod(a, b) {
  const r = a % b;
  return (b > 0 && r < 0) || (b < 0 && r > 0) ? r + b : r;
}`},
	{"luaSub", `// luaSub is Lua's string.sub: 1-based, negative positions count from the end.
function luaSub(s, i, j = -1) {
  const n = s.length;
  i = Math.trunc(i);
  j = Math.trunc(j);
  const from = i > 0 ? i - 1 : i < 0 ? Math.max(n + i, 0) : 0;
  const to = j < 0 ? Math.max(n + j + 1, 0) : Math.min(j, n);
  return from >= to ? '' : s.slice(from, to);
}`},
	{"toScopes", `// toScopes reads scopes given as an array or as one space-separated
// string, as Rules accepted both.
function toScopes(v) {
  if (v === undefined || v === null) return [];
  return typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : v;
}`},
}

// helperCode returns the helpers the action uses.
func (p *jsPrinter) helperCode() string {
	var b strings.Builder
	for _, h := range jsHelpers {
		if p.helpers[h.name] {
			b.WriteString(h.code + "\n\n")
		}
	}
	return b.String()
}

// multiResults are the library functions that return several values.
var multiResults = map[string]bool{
	"string.find": true, "string.gsub": true, "string.match": true, "string.byte": true,
	"unpack": true, "select": true, "next": true, "pcall": true, "xpcall": true,
}

// returnsMany reports whether the call e may give several values.
func (p *jsPrinter) returnsMany(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Comma3Expr:
		return true
	case *ast.FuncCallExpr:
		if multiResults[p.a.builtin(e)] {
			return true
		}
		if id, ok := e.Func.(*ast.IdentExpr); ok && p.a.refs[id] != nil && p.a.refs[id].fn != nil {
			for _, r := range p.a.returns[p.a.refs[id].fn] {
				if len(r.Exprs) > 1 || len(r.Exprs) == 1 && multiValued(r.Exprs[0]) {
					return true
				}
			}
		}
	}
	return false
}

// returnsOne reports whether the call e is known to give one value: a
// library function that does, or a function of the rule that returns
// one value.
func (p *jsPrinter) returnsOne(e ast.Expr) bool {
	call, ok := e.(*ast.FuncCallExpr)
	if !ok || p.returnsMany(e) {
		return false
	}
	if name := p.a.builtin(call); name != "" {
		return true
	}
	id, ok := call.Func.(*ast.IdentExpr)
	return ok && p.a.refs[id] != nil && p.a.refs[id].fn != nil
}

// args prints the arguments of a call.
func (p *jsPrinter) args(args []ast.Expr) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = p.text(a)
	}
	if n := len(args); n > 0 && multiValued(args[n-1]) && p.returnsMany(args[n-1]) {
		p.issue(args[n-1], luaSource(args[n-1]), "several results of one call passed on as arguments")
	}
	return strings.Join(parts, ", ")
}

// tableMethod reports whether e calls a method of a table rather than
// of the string library.
func (p *jsPrinter) tableMethod(e *ast.FuncCallExpr) bool {
	if e.Receiver == nil {
		return false
	}
	t := p.a.typeOf(e.Receiver)
	return t.may(kTable) && !t.may(kString)
}

// call prints a call as a value.
func (p *jsPrinter) call(e *ast.FuncCallExpr) (string, int) {
	if name := p.a.builtin(e); name != "" && !p.tableMethod(e) {
		return p.library(name, e)
	}
	if e.Receiver != nil {
		// t:m(...) is t.m(t, ...): Lua passes the receiver as self.
		recv := p.member(e.Receiver)
		if !simple(e.Receiver) {
			p.issue(e, luaSource(e), "a method called on an expression: store it in a variable first")
		}
		args := recv
		if len(e.Args) > 0 {
			args += ", " + p.args(e.Args)
		}
		return recv + jsMember(e.Method, false) + "(" + args + ")", jsPostfix
	}
	if p.a.isCallback(e.Func) {
		return "undefined", jsPrimary // reported by the checks
	}
	return p.member(e.Func) + "(" + p.args(e.Args) + ")", jsPostfix
}

// callArgs returns the arguments of a library call, the receiver first
// for s:name(...).
func callArgs(e *ast.FuncCallExpr) []ast.Expr {
	if e.Receiver != nil {
		return append([]ast.Expr{e.Receiver}, e.Args...)
	}
	return e.Args
}

// str prints a string library call's subject: Lua turns a number into
// a string there.
func (p *jsPrinter) str(e ast.Expr) string {
	if p.a.typeOf(e).k&^kNil == kString {
		return p.member(e)
	}
	return "String(" + p.text(e) + ")"
}

// library prints a call to a library function.
func (p *jsPrinter) library(name string, e *ast.FuncCallExpr) (string, int) {
	args := callArgs(e)
	arg := func(i int) ast.Expr {
		if i < len(args) {
			return args[i]
		}
		return &ast.NilExpr{}
	}
	switch name {
	case "string.lower":
		return p.str(arg(0)) + ".toLowerCase()", jsPostfix
	case "string.upper":
		return p.str(arg(0)) + ".toUpperCase()", jsPostfix
	case "string.len":
		return p.str(arg(0)) + ".length", jsPostfix
	case "string.sub":
		return p.sub(e, args)
	case "string.rep":
		return p.rep(e, args)
	case "string.find":
		return p.findValue(e)
	case "string.format":
		return p.format(e, args)
	case "string.gsub":
		return p.gsub(e, args)
	case "tostring":
		return p.tostring(arg(0))
	case "tonumber":
		if len(args) > 1 {
			break
		}
		if p.a.typeOf(arg(0)).k == kNumber {
			return p.value(arg(0))
		}
		p.helpers["luaToNumber"] = true
		return "luaToNumber(" + p.text(arg(0)) + ")", jsPostfix
	case "type":
		p.helpers["luaType"] = true
		return "luaType(" + p.text(arg(0)) + ")", jsPostfix
	case "print":
		return "console.log(" + p.args(args) + ")", jsPostfix
	case "error":
		return "(() => {\n" + p.w.indent() + "  throw new Error(" + p.errorMessage(args) + ");\n" +
			p.w.indent() + "})()", jsPostfix
	case "rawequal":
		return p.operand(arg(0), jsEquality) + " === " + p.operand(arg(1), jsEquality+1), jsEquality
	case "UnauthorizedError":
		return "new Error(" + p.message(firstArg(args)) + ")", jsPostfix
	case "math.floor", "math.ceil", "math.abs", "math.sqrt":
		return "Math." + strings.TrimPrefix(name, "math.") + "(" + p.numeric(arg(0)) + ")", jsPostfix
	case "math.max", "math.min":
		parts := make([]string, len(args))
		for i, a := range args {
			parts[i] = p.numeric(a)
		}
		return "Math." + strings.TrimPrefix(name, "math.") + "(" + strings.Join(parts, ", ") + ")", jsPostfix
	case "math.fmod":
		return p.operand(arg(0), jsMul) + " % " + p.operand(arg(1), jsMul+1), jsMul
	case "table.concat":
		if len(args) > 2 {
			break
		}
		sep := "''"
		if len(args) > 1 {
			sep = p.text(args[1])
		}
		return p.member(arg(0)) + ".join(" + sep + ")", jsPostfix
	case "table.remove":
		if len(args) == 1 {
			return p.member(arg(0)) + ".pop()", jsPostfix
		}
		return p.member(arg(0)) + ".splice(" + p.index0(arg(1)) + ", 1)[0]", jsPostfix
	case "json.decode":
		return "JSON.parse(" + p.text(arg(0)) + ")", jsPostfix
	case "json.encode":
		p.issue(e, luaSource(e), "JSON.stringify orders keys and writes empty tables and numbers "+
			"differently from rulesgate's json.encode")
		return "JSON.stringify(" + p.text(arg(0)) + ")", jsPostfix
	}
	p.issue(e, luaSource(e), name+" has no JavaScript translation here")
	return strings.ReplaceAll(name, ".", "_") + "(" + p.args(args) + ")", jsPostfix
}

func firstArg(args []ast.Expr) ast.Expr {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func (p *jsPrinter) tostring(x ast.Expr) (string, int) {
	switch p.a.typeOf(x).k {
	case kString:
		return p.value(x)
	case kNumber, kBool, kTrue, kFalse:
		return "String(" + p.text(x) + ")", jsPostfix
	}
	p.helpers["luaToString"] = true
	return "luaToString(" + p.text(x) + ")", jsPostfix
}

// intLiteral returns the integer a literal (or a negated one) holds.
func intLiteral(e ast.Expr) (int, bool) {
	neg := 1
	if u, ok := e.(*ast.UnaryMinusOpExpr); ok {
		neg, e = -1, u.Expr
	}
	n, ok := e.(*ast.NumberExpr)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(jsNumber(n.Value))
	return neg * v, err == nil
}

// sub prints string.sub(s, i, j): a slice when i and j are literals.
func (p *jsPrinter) sub(e *ast.FuncCallExpr, args []ast.Expr) (string, int) {
	if len(args) < 2 {
		p.issue(e, luaSource(e), "string.sub without a start")
		return p.str(firstArg(args)), jsPostfix
	}
	i, iok := intLiteral(args[1])
	j, jok := -1, true
	if len(args) > 2 {
		j, jok = intLiteral(args[2])
	}
	if !iok || !jok {
		p.helpers["luaSub"] = true
		rest := p.text(args[1])
		if len(args) > 2 {
			rest += ", " + p.text(args[2])
		}
		return "luaSub(" + p.str(args[0]) + ", " + rest + ")", jsPostfix
	}
	start := 0
	switch {
	case i > 0:
		start = i - 1
	case i < 0:
		start = i
	}
	bounds := strconv.Itoa(start)
	switch {
	case j >= 0:
		bounds += ", " + strconv.Itoa(j)
	case j < -1:
		bounds += ", " + strconv.Itoa(j+1)
	}
	return p.str(args[0]) + ".slice(" + bounds + ")", jsPostfix
}

func (p *jsPrinter) rep(e *ast.FuncCallExpr, args []ast.Expr) (string, int) {
	if len(args) != 2 {
		p.issue(e, luaSource(e), "string.rep with a separator has no translation here")
		return "undefined", jsPrimary
	}
	if n, ok := intLiteral(args[1]); ok && n >= 0 {
		return p.str(args[0]) + ".repeat(" + strconv.Itoa(n) + ")", jsPostfix
	}
	if isCount(args[1]) {
		return p.str(args[0]) + ".repeat(" + p.text(args[1]) + ")", jsPostfix
	}
	return p.str(args[0]) + ".repeat(Math.max(0, Math.trunc(" + p.numeric(args[1]) + ")))", jsPostfix
}

// isCount reports whether e is a length: a whole number, never negative.
func isCount(e ast.Expr) bool {
	_, ok := e.(*ast.UnaryLenOpExpr)
	return ok
}

// findMode is how a string.find call translates.
type findMode uint8

const (
	findNone   findMode = iota
	findPlain           // a plain search: indexOf
	findPrefix          // "^text": startsWith
)

// findParts returns the subject and the searched text of a
// string.find(s, text) whose pattern is plain text or "^text".
func (p *jsPrinter) findParts(e *ast.FuncCallExpr) (string, string, findMode) {
	args := callArgs(e)
	if len(args) < 2 || len(args) > 4 {
		return "", "", findNone
	}
	pat, ok := args[1].(*ast.StringExpr)
	if !ok {
		return "", "", findNone
	}
	if len(args) > 2 && !isNil(args[2]) && !isOne(args[2]) {
		return "", "", findNone
	}
	plainArg := len(args) == 4 && !isNil(args[3])
	if plainArg {
		if _, isTrue := args[3].(*ast.TrueExpr); !isTrue {
			return "", "", findNone
		}
	}
	subject := p.str(args[0])
	switch {
	case plainArg || isPlain(pat.Value):
		return subject, p.quote(pat, pat.Value), findPlain
	case strings.HasPrefix(pat.Value, "^") && isPlain(pat.Value[1:]):
		return subject, p.quote(pat, pat.Value[1:]), findPrefix
	}
	return "", "", findNone
}

// findValue prints string.find as the position Lua returns.
func (p *jsPrinter) findValue(e *ast.FuncCallExpr) (string, int) {
	subject, text, mode := p.findParts(e)
	switch mode {
	case findPlain:
		return "(" + subject + ".indexOf(" + text + ") + 1 || undefined)", jsPrimary
	case findPrefix:
		return "(" + subject + ".startsWith(" + text + ") ? 1 : undefined)", jsPrimary
	}
	p.issue(e, luaSource(e), "string.find with a pattern: only plain text and ^text translate")
	return "undefined", jsPrimary
}

// findCond prints string.find as a condition: whether it finds the text
// (found) or not.
func (p *jsPrinter) findCond(e *ast.FuncCallExpr, found bool) (string, bool) {
	if p.a.builtin(e) != "string.find" {
		return "", false
	}
	subject, text, mode := p.findParts(e)
	neg := ""
	if !found {
		neg = "!"
	}
	switch mode {
	case findPlain:
		return neg + subject + ".includes(" + text + ")", true
	case findPrefix:
		return neg + subject + ".startsWith(" + text + ")", true
	}
	return "", false
}

// format prints string.format with %s, %d and %% as a template literal.
func (p *jsPrinter) format(e *ast.FuncCallExpr, args []ast.Expr) (string, int) {
	f, ok := firstArg(args).(*ast.StringExpr)
	if !ok {
		p.issue(e, luaSource(e), "string.format with a format chosen at run time")
		return "undefined", jsPrimary
	}
	var b strings.Builder
	b.WriteByte('`')
	next := 1
	s := f.Value
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteString(templateEscape(s[i : i+1]))
			continue
		}
		i++
		if i < len(s) && s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if i >= len(s) || strings.IndexByte("sdi", s[i]) < 0 || next >= len(args) {
			p.issue(e, luaSource(e), "string.format: only %s, %d and %% translate, one argument each")
			return "undefined", jsPrimary
		}
		x := args[next]
		next++
		if s[i] == 's' {
			v, _ := p.tostring(x)
			b.WriteString("${" + v + "}")
			continue
		}
		if !p.a.typeOf(x).may(kNumber) {
			p.issue(e, luaSource(e), "string.format %d of a value that is not a number")
		}
		if isCount(x) {
			b.WriteString("${" + p.text(x) + "}")
		} else {
			b.WriteString("${Math.trunc(" + p.text(x) + ")}")
		}
	}
	b.WriteByte('`')
	return b.String(), jsPrimary
}

// gsub prints string.gsub with plain text to replace by plain text.
func (p *jsPrinter) gsub(e *ast.FuncCallExpr, args []ast.Expr) (string, int) {
	if len(args) == 3 {
		pat, isPat := args[1].(*ast.StringExpr)
		repl, isRepl := args[2].(*ast.StringExpr)
		if isPat && isRepl && isPlain(pat.Value) && !strings.Contains(repl.Value, "%") {
			return p.str(args[0]) + ".replaceAll(" + p.quote(pat, pat.Value) + ", " +
				p.quote(repl, repl.Value) + ")", jsPostfix
		}
	}
	p.issue(e, luaSource(e), "string.gsub with a pattern or a computed replacement: "+
		"only plain text replaced by plain text translates")
	return p.str(firstArg(args)), jsPostfix
}

// compareSpecial prints the comparisons that have a JavaScript idiom:
// type(x) == "string", string.find(...) == nil, next(t) == nil.
func (p *jsPrinter) compareSpecial(e *ast.RelationalOpExpr) (string, int, bool) {
	if e.Operator != "==" && e.Operator != "~=" {
		return "", 0, false
	}
	eq := e.Operator == "=="
	call, other := asCall(e.Lhs), e.Rhs
	if call == nil {
		call, other = asCall(e.Rhs), e.Lhs
	}
	if call == nil {
		return "", 0, false
	}
	switch p.a.builtin(call) {
	case "type":
		lit, ok := other.(*ast.StringExpr)
		if !ok || len(call.Args) != 1 || !simple(call.Args[0]) {
			return "", 0, false
		}
		return p.typeTest(call.Args[0], lit.Value, eq)
	case "string.find":
		if !isNil(other) {
			return "", 0, false
		}
		s, ok := p.findCond(call, !eq)
		return s, jsUnary, ok
	case "next":
		if !isNil(other) || len(call.Args) != 1 {
			return "", 0, false
		}
		op := " === 0"
		if !eq {
			op = " !== 0"
		}
		if p.a.typeOf(call.Args[0]).tableShape() == shapeArray {
			return p.member(call.Args[0]) + ".length" + op, jsEquality, true
		}
		return "Object.keys(" + p.text(call.Args[0]) + ").length" + op, jsEquality, true
	}
	return "", 0, false
}

func asCall(e ast.Expr) *ast.FuncCallExpr {
	c, _ := e.(*ast.FuncCallExpr)
	return c
}

// typeTest prints type(x) == name with typeof.
func (p *jsPrinter) typeTest(x ast.Expr, name string, eq bool) (string, int, bool) {
	v := p.operand(x, jsEquality+1)
	op, nullOp, not := " === ", " == null", ""
	if !eq {
		op, nullOp, not = " !== ", " != null", "!"
	}
	switch name {
	case "string", "number", "boolean", "function":
		return "typeof " + v + op + jsQuote(name), jsEquality, true
	case "nil":
		return v + nullOp, jsEquality, true
	case "table":
		return not + "(typeof " + v + " === 'object' && " + v + " !== null)", jsUnary, true
	}
	return "", 0, false
}

// callStmt prints a call made as a statement.
func (p *jsPrinter) callStmt(e *ast.FuncCallExpr) {
	w := p.w
	args := callArgs(e)
	switch name := p.a.builtin(e); {
	case p.tableMethod(e):
	case name == "error":
		w.line("throw new Error(" + p.errorMessage(args) + ");")
		return
	case name == "assert" && len(args) > 0:
		msg := "'assertion failed!'"
		if len(args) > 1 {
			msg = p.text(args[1])
		}
		failed, _ := p.not(args[0])
		w.line("if (" + failed + ") throw new Error(" + msg + ");")
		return
	case name == "table.insert" && len(args) == 2:
		w.line(p.member(args[0]) + ".push(" + p.text(args[1]) + ");")
		return
	case name == "table.insert" && len(args) == 3:
		w.line(p.member(args[0]) + ".splice(" + p.index0(args[1]) + ", 0, " + p.text(args[2]) + ");")
		return
	case name == "table.sort" && len(args) == 1:
		w.line(p.member(args[0]) + ".sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));")
		return
	case name == "table.remove" && len(args) == 1:
		w.line(p.member(args[0]) + ".pop();")
		return
	}
	w.line(p.text(e) + ";")
}

// errorMessage prints the message error(msg) raises.
func (p *jsPrinter) errorMessage(args []ast.Expr) string {
	if len(args) == 0 {
		return ""
	}
	s, _ := p.tostring(args[0])
	return s
}

func (p *jsPrinter) genericFor(s *ast.GenericForStmt) {
	vars := p.a.decls[s]
	call, _ := s.Exprs[0].(*ast.FuncCallExpr)
	name := ""
	if len(s.Exprs) == 1 && call != nil {
		name = p.a.builtin(call)
	}
	switch {
	case name == "ipairs" && len(call.Args) == 1:
		if p.a.typeOf(call.Args[0]).tableShape() == shapeObject {
			p.issue(s, luaSource(call), "ipairs over a table used as an object")
		}
		p.forArray(s, call.Args[0], vars)
	case name == "pairs" && len(call.Args) == 1:
		if p.a.typeOf(call.Args[0]).tableShape() == shapeArray {
			p.forArray(s, call.Args[0], vars)
		} else {
			p.forObject(s, call.Args[0], vars)
		}
	case name == "string.gmatch":
		p.forMatch(s, call, vars)
	default:
		p.issue(s, "for ... in "+p.luaList(s.Exprs), "an iterator other than ipairs, pairs and string.gmatch")
		p.w.line("for (const [" + strings.Join(jsNames(vars), ", ") + "] of " + p.text(s.Exprs[0]) + ") {")
		p.inner(s.Stmts, s.LastLine(), "}")
	}
}

func (p *jsPrinter) luaList(es []ast.Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = luaSource(e)
	}
	return strings.Join(parts, ", ")
}

// loopKeyword returns const for a loop variable the body never assigns.
func loopKeyword(v *variable) string {
	if v.writes > 0 {
		return "let"
	}
	return "const"
}

// forArray prints a loop over an array's values, with a 1-based index
// when the body reads it.
func (p *jsPrinter) forArray(s *ast.GenericForStmt, table ast.Expr, vars []*variable) {
	list := p.text(table)
	if len(vars) < 2 || vars[0].reads == 0 && vars[0].writes == 0 {
		name := "_"
		keyword := "const"
		if len(vars) == 2 {
			name, keyword = vars[1].js, loopKeyword(vars[1])
		}
		p.w.line("for (" + keyword + " " + name + " of " + list + ") {")
		p.inner(s.Stmts, s.LastLine(), "}")
		return
	}
	if !simple(table) {
		tmp := p.a.fresh("list", p.temps)
		p.w.line("const " + tmp + " = " + list + ";")
		list = tmp
	}
	i := vars[0]
	if i.writes > 0 {
		p.issue(s, "for "+i.name+", ... in", "the loop assigns its index: Lua counts on "+
			"regardless, JavaScript does not")
	}
	p.w.line("for (let " + i.js + " = 1; " + i.js + " <= " + list + ".length; " + i.js + "++) {")
	if len(vars) > 1 {
		p.w.line("  " + loopKeyword(vars[1]) + " " + vars[1].js + " = " + list + "[" + i.js + " - 1];")
	}
	p.inner(s.Stmts, s.LastLine(), "}")
}

// forObject prints a loop over an object's entries.
//
// TODO(migrate): Object.entries lists integer-like keys first, then the
// others in insertion order; rulesgate walks request and client maps in
// sorted order. A rule whose result depends on the order differs.
func (p *jsPrinter) forObject(s *ast.GenericForStmt, table ast.Expr, vars []*variable) {
	obj := p.text(table)
	used := func(i int) bool { return i < len(vars) && (vars[i].reads > 0 || vars[i].writes > 0) }
	var head string
	switch {
	case used(0) && used(1):
		keyword := "const"
		if vars[0].writes > 0 || vars[1].writes > 0 {
			keyword = "let"
		}
		head = keyword + " [" + vars[0].js + ", " + vars[1].js + "] of Object.entries(" + obj + ")"
	case used(1):
		head = loopKeyword(vars[1]) + " " + vars[1].js + " of Object.values(" + obj + ")"
	default:
		head = loopKeyword(vars[0]) + " " + vars[0].js + " of Object.keys(" + obj + ")"
	}
	p.w.line("for (" + head + ") {")
	p.inner(s.Stmts, s.LastLine(), "}")
}

// forMatch prints for w in string.gmatch(s, pattern) over the matches of
// the pattern as a regular expression.
func (p *jsPrinter) forMatch(s *ast.GenericForStmt, call *ast.FuncCallExpr, vars []*variable) {
	args := callArgs(call)
	var re string
	ok := false
	pat, isLit := secondArg(args).(*ast.StringExpr)
	if isLit && len(vars) == 1 && !strings.HasPrefix(pat.Value, "^") {
		re, ok = jsRegexp(pat.Value)
	}
	subject := "undefined"
	if len(args) > 0 {
		subject = p.str(args[0])
	}
	if !ok {
		p.issue(s, luaSource(call), "string.gmatch with captures or a pattern that has no "+
			"regular expression equivalent here")
		re = "(?:)"
	}
	name := "_"
	keyword := "const"
	if len(vars) > 0 {
		name, keyword = vars[0].js, loopKeyword(vars[0])
	}
	p.w.line("for (" + keyword + " " + name + " of " + subject + ".match(/" + re + "/g) ?? []) {")
	p.inner(s.Stmts, s.LastLine(), "}")
}

func secondArg(args []ast.Expr) ast.Expr {
	if len(args) < 2 {
		return nil
	}
	return args[1]
}
