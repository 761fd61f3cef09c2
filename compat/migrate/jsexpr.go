package migrate

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/gopher-lua/ast"
)

// JavaScript operator precedences, loosest first (ECMA-262 §13).
const (
	jsAssign = iota + 1 // also functions
	jsCond
	jsNullish
	jsOr
	jsAnd
	jsEquality
	jsRelational
	jsAdd
	jsMul
	jsPow
	jsUnary
	jsPostfix // calls and members
	jsPrimary
)

// paren returns s in parentheses when its precedence is below min.
func paren(s string, prec, min int) string {
	if prec < min {
		return "(" + s + ")"
	}
	return s
}

// text prints e as a value where any expression fits.
func (p *jsPrinter) text(e ast.Expr) string {
	s, prec := p.value(e)
	return paren(s, prec, jsAssign+1)
}

// operand prints e as a value, in parentheses when it binds looser than min.
func (p *jsPrinter) operand(e ast.Expr, min int) string {
	s, prec := p.value(e)
	return paren(s, prec, min)
}

// member prints e where a member access or a call follows it.
func (p *jsPrinter) member(e ast.Expr) string {
	s, prec := p.value(e)
	if strings.HasPrefix(s, "{") {
		return "(" + s + ")" // an object literal, not a block
	}
	if _, ok := e.(*ast.NumberExpr); ok {
		return "(" + s + ")"
	}
	return paren(s, prec, jsPostfix)
}

// condText prints e as a condition that holds exactly when Lua finds e
// true: only nil and false are false in Lua, where JavaScript also
// counts 0, "" and NaN.
func (p *jsPrinter) condText(e ast.Expr) string {
	s, _ := p.cond(e)
	return s
}

func (p *jsPrinter) cond(e ast.Expr) (string, int) {
	switch e := e.(type) {
	case *ast.LogicalOpExpr:
		if e.Operator == "and" {
			l, lp := p.cond(e.Lhs)
			r, rp := p.cond(e.Rhs)
			return paren(l, lp, jsAnd) + " && " + paren(r, rp, jsAnd+1), jsAnd
		}
		l, lp := p.cond(e.Lhs)
		r, rp := p.cond(e.Rhs)
		return paren(l, lp, jsOr) + " || " + paren(r, rp, jsOr+1), jsOr
	case *ast.UnaryNotOpExpr:
		return p.not(e.Expr)
	case *ast.FuncCallExpr:
		if s, ok := p.findCond(e, true); ok {
			return s, jsPostfix
		}
	}
	return p.truth(e)
}

// not prints not e: the negation of its truth, "x == null" rather than
// "!(x != null)".
func (p *jsPrinter) not(e ast.Expr) (string, int) {
	if call, ok := e.(*ast.FuncCallExpr); ok {
		if s, ok := p.findCond(call, false); ok {
			return s, jsUnary
		}
	}
	s, prec := p.cond(e)
	if prec == jsEquality {
		for _, pair := range [][2]string{{" != null", " == null"}, {" !== false", " === false"}} {
			if strings.HasSuffix(s, pair[0]) && !strings.Contains(s, " && ") && !strings.Contains(s, " || ") {
				return strings.TrimSuffix(s, pair[0]) + pair[1], jsEquality
			}
		}
	}
	return "!" + paren(s, prec, jsUnary), jsUnary
}

// truth prints the Lua truth of a value.
func (p *jsPrinter) truth(e ast.Expr) (string, int) {
	t := p.a.typeOf(e)
	s, prec := p.value(e)
	switch {
	case !t.may(kNumber | kString):
		return s, prec // JavaScript's truth agrees
	case !t.may(kFalse):
		return paren(s, prec, jsEquality+1) + " != null", jsEquality
	case !t.may(kNil):
		return paren(s, prec, jsEquality+1) + " !== false", jsEquality
	}
	p.helpers["luaTruthy"] = true
	return "luaTruthy(" + s + ")", jsPostfix
}

// value prints e as a JavaScript value and returns its precedence.
func (p *jsPrinter) value(e ast.Expr) (string, int) {
	switch e := e.(type) {
	case *ast.NilExpr:
		return "undefined", jsPrimary
	case *ast.TrueExpr:
		return "true", jsPrimary
	case *ast.FalseExpr:
		return "false", jsPrimary
	case *ast.NumberExpr:
		return jsNumber(e.Value), jsPrimary
	case *ast.StringExpr:
		return p.quote(e, e.Value), jsPrimary
	case *ast.Comma3Expr:
		p.issue(e, "...", "variable arguments: rewrite with an array parameter")
		return "undefined", jsPrimary
	case *ast.IdentExpr:
		return p.ident(e), jsPrimary
	case *ast.AttrGetExpr:
		return p.index(e)
	case *ast.FuncCallExpr:
		return p.call(e)
	case *ast.LogicalOpExpr:
		return p.logical(e)
	case *ast.RelationalOpExpr:
		return p.relational(e)
	case *ast.StringConcatOpExpr:
		return p.concat(e), jsPrimary
	case *ast.ArithmeticOpExpr:
		return p.arith(e)
	case *ast.UnaryMinusOpExpr:
		s, prec := p.numericValue(e.Expr)
		return "-" + paren(s, prec, jsUnary), jsUnary
	case *ast.UnaryNotOpExpr:
		return p.not(e.Expr)
	case *ast.UnaryLenOpExpr:
		return p.length(e), jsPostfix
	case *ast.FunctionExpr:
		return p.functionExpr(e), jsAssign
	case *ast.TableExpr:
		return p.table(e), jsPrimary
	}
	return "undefined", jsPrimary
}

// quote prints a Lua string as a JavaScript one. Lua strings are bytes;
// one that is not UTF-8 text has no JavaScript equivalent.
func (p *jsPrinter) quote(n ast.PositionHolder, s string) string {
	if !utf8.ValidString(s) {
		p.issue(n, luaQuote(s), "a string that is not UTF-8 text: JavaScript strings are text, Lua's are bytes")
	}
	return jsQuote(s)
}

// jsQuote returns s as a single-quoted JavaScript string literal.
func jsQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || r == utf8.RuneError:
			b.WriteString(`\u` + strings.Repeat("0", 4-len(strconv.FormatInt(int64(r), 16))) +
				strconv.FormatInt(int64(r), 16))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// jsNumber prints a Lua numeral as JavaScript: the same value, written
// without the leading zeros JavaScript reads as octal.
func jsNumber(lit string) string {
	v, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		u, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(lit), "0x"), 16, 64)
		if err != nil {
			return lit
		}
		v = float64(u)
	}
	if strings.HasPrefix(strings.ToLower(lit), "0x") {
		return lit
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e21 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (p *jsPrinter) ident(e *ast.IdentExpr) string {
	v := p.a.refs[e]
	switch {
	case v == nil:
	case v.role == roleUser:
		return "({})"
	case v.role == roleContext, v.role == roleCallback:
		return "undefined"
	default:
		return v.js
	}
	switch {
	case e.Value == "configuration":
		p.issue(e, e.Value, "the secrets as a whole: the action's list of secrets names only those read by name")
		return "event.secrets"
	case e.Value == "global":
		return "ruleGlobal"
	case baseFunctions[e.Value] || modules[e.Value]:
		p.issue(e, e.Value, "a library used as a value: only calls to it are translated")
	}
	return e.Value
}

// index prints a read of t[k] or t.k.
func (p *jsPrinter) index(e *ast.AttrGetExpr) (string, int) {
	if p.a.rootedAtContext(e) {
		return p.contextIndex(e)
	}
	if p.a.isGlobal(e.Object, "configuration") {
		return p.secret(e), jsPostfix
	}
	if name := p.a.libraryName(e); name != "" {
		switch name {
		case "math.huge":
			return "Infinity", jsPrimary
		case "math.pi":
			return "Math.PI", jsPostfix
		}
		p.issue(e, name, "a library function used as a value: only calls to it are translated")
		return "undefined", jsPrimary
	}
	return p.member(e.Object) + p.key(e, false), jsPostfix
}

// contextIndex prints a read below the context: its event field.
func (p *jsPrinter) contextIndex(e *ast.AttrGetExpr) (string, int) {
	path, constant := p.a.contextPath(e)
	if constant {
		if f, ok := contextFields[strings.Join(path, ".")]; ok && f.optional {
			return "(" + f.path + " ?? {})", jsPrimary // read as a whole
		}
		if f, ok := contextFields[strings.Join(path, ".")]; ok {
			return f.path, jsPostfix
		}
		if isScopePath(path) {
			return "scopes", jsPrimary
		}
	}
	objPath, ok := p.a.contextPath(e.Object)
	if !ok || !mappedPrefix(objPath) && !isScopePath(objPath) {
		return "undefined", jsPrimary // reported by the checks
	}
	if f, ok := contextFields[strings.Join(objPath, ".")]; ok && f.optional {
		return f.path + p.key(e, true), jsPostfix
	}
	return p.member(e.Object) + p.key(e, false), jsPostfix
}

// secret prints configuration.X as event.secrets.X.
func (p *jsPrinter) secret(e *ast.AttrGetExpr) string {
	if k, ok := e.Key.(*ast.StringExpr); ok {
		p.secrets[k.Value] = true
		return "event.secrets" + jsMember(k.Value, false)
	}
	p.issue(e, luaSource(e), "a secret chosen at run time: add it to the action's secrets by hand")
	return "event.secrets[" + p.text(e.Key) + "]"
}

// jsMember prints .name, or ['name'] when name is not an identifier.
func jsMember(name string, optional bool) string {
	dot := "."
	if optional {
		dot = "?."
	}
	if isJSName(name) {
		return dot + name
	}
	if optional {
		return "?.[" + jsQuote(name) + "]"
	}
	return "[" + jsQuote(name) + "]"
}

func isJSName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// key prints the [k] or .k of an index, counting from 0 for an array.
//
// TODO(migrate): a JavaScript object also answers the keys of its
// prototype: t["constructor"] is a function where Lua's t["constructor"]
// is nil. Objects the rule builds as sets or maps could be written with
// Object.create(null) or read with Object.hasOwn.
func (p *jsPrinter) key(e *ast.AttrGetExpr, optional bool) string {
	obj := p.a.typeOf(e.Object)
	keyT := p.a.typeOf(e.Key)
	open := "["
	if optional {
		open = "?.["
	}
	switch obj.tableShape() {
	case shapeArray:
		if keyT.k != kNumber {
			p.issue(e, luaSource(e), "an array indexed with a non-number: no JavaScript equivalent")
		}
		return open + p.index0(e.Key) + "]"
	case shapeMixed:
		p.issue(e, luaSource(e), "a table used both as an array and as an object: "+
			"JavaScript needs one or the other")
	case shapeUnknown:
		if keyT.may(kNumber) && !obj.may(kString) {
			p.issue(e, luaSource(e), "indexes with a number a table that may be an array: "+
				"JavaScript arrays count from 0, Lua's from 1")
		}
	}
	if k, ok := e.Key.(*ast.StringExpr); ok {
		return jsMember(k.Value, optional)
	}
	return open + p.text(e.Key) + "]"
}

// index0 prints a 1-based Lua index as a 0-based JavaScript one.
func (p *jsPrinter) index0(k ast.Expr) string {
	if n, ok := k.(*ast.NumberExpr); ok {
		if v, err := strconv.ParseFloat(jsNumber(n.Value), 64); err == nil {
			return strconv.FormatFloat(v-1, 'f', -1, 64)
		}
	}
	if sum, ok := k.(*ast.ArithmeticOpExpr); ok && sum.Operator == "+" && isOne(sum.Rhs) &&
		p.a.typeOf(sum.Lhs).k == kNumber {
		return p.text(sum.Lhs) // t[i + 1] is t[i] counting from 0
	}
	return p.operand(k, jsAdd) + " - 1"
}

func isOne(e ast.Expr) bool {
	n, ok := e.(*ast.NumberExpr)
	return ok && jsNumber(n.Value) == "1"
}

// target prints the target of an assignment.
func (p *jsPrinter) target(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.IdentExpr:
		return p.ident(e)
	case *ast.AttrGetExpr:
		if p.a.rootedAtContext(e) || p.a.isGlobal(e.Object, "configuration") {
			s, _ := p.index(e)
			return s
		}
		return p.member(e.Object) + p.key(e, false)
	}
	return p.text(e)
}

// numeric prints e for arithmetic: Lua turns numeric strings into numbers
// there, JavaScript's + joins them.
func (p *jsPrinter) numeric(e ast.Expr) string {
	s, prec := p.numericValue(e)
	return paren(s, prec, jsAssign+1)
}

func (p *jsPrinter) numericValue(e ast.Expr) (string, int) {
	// nil is an error in Lua arithmetic: a number or nil needs no Number().
	if p.a.typeOf(e).k&^kNil == kNumber {
		return p.value(e)
	}
	return "Number(" + p.text(e) + ")", jsPostfix
}

func (p *jsPrinter) arith(e *ast.ArithmeticOpExpr) (string, int) {
	l, lp := p.numericValue(e.Lhs)
	r, rp := p.numericValue(e.Rhs)
	switch e.Operator {
	case "+", "-":
		return paren(l, lp, jsAdd) + " " + e.Operator + " " + paren(r, rp, jsAdd+1), jsAdd
	case "*", "/":
		return paren(l, lp, jsMul) + " " + e.Operator + " " + paren(r, rp, jsMul+1), jsMul
	case "^":
		return paren(l, lp, jsPostfix) + " ** " + paren(r, rp, jsPow), jsPow
	}
	// Lua's % takes the divisor's sign, JavaScript's the dividend's.
	p.helpers["luaMod"] = true
	return "luaMod(" + l + ", " + r + ")", jsPostfix
}

// length prints #x.
func (p *jsPrinter) length(e *ast.UnaryLenOpExpr) string {
	t := p.a.typeOf(e.Expr)
	if t.may(kTable) && t.tableShape() == shapeObject {
		p.issue(e, luaSource(e), "the length of a table used as an object: Lua counts its "+
			"array part, JavaScript objects have no length")
	}
	return p.member(e.Expr) + ".length"
}

func (p *jsPrinter) logical(e *ast.LogicalOpExpr) (string, int) {
	lt := p.a.typeOf(e.Lhs)
	agrees := !lt.may(kNumber | kString)
	if e.Operator == "or" {
		// a and b or c is Lua's conditional when b is never false or nil.
		if and, ok := e.Lhs.(*ast.LogicalOpExpr); ok && and.Operator == "and" &&
			!p.a.typeOf(and.Rhs).may(kNil|kFalse) {
			c, cp := p.cond(and.Lhs)
			return paren(c, cp, jsNullish) + " ? " + p.text(and.Rhs) + " : " + p.operand(e.Rhs, jsCond), jsCond
		}
		switch {
		case agrees:
			return p.operand(e.Lhs, jsOr) + " || " + p.operand(e.Rhs, jsOr+1), jsOr
		case !lt.may(kFalse):
			return p.operand(e.Lhs, jsEquality) + " ?? " + p.operand(e.Rhs, jsEquality), jsNullish
		case simple(e.Lhs):
			c, cp := p.truth(e.Lhs)
			return paren(c, cp, jsNullish) + " ? " + p.text(e.Lhs) + " : " + p.operand(e.Rhs, jsCond), jsCond
		}
		p.issue(e, luaSource(e), "or on a value that may be false, 0 or '': keep Lua's meaning by hand")
		return p.operand(e.Lhs, jsEquality) + " ?? " + p.operand(e.Rhs, jsEquality), jsNullish
	}
	switch {
	case agrees:
		return p.operand(e.Lhs, jsAnd) + " && " + p.operand(e.Rhs, jsAnd+1), jsAnd
	case simple(e.Lhs):
		c, cp := p.truth(e.Lhs)
		return paren(c, cp, jsNullish) + " ? " + p.text(e.Rhs) + " : " + p.operand(e.Lhs, jsCond), jsCond
	}
	p.issue(e, luaSource(e), "and on a value that may be 0 or '': keep Lua's meaning by hand")
	return p.operand(e.Lhs, jsAnd) + " && " + p.operand(e.Rhs, jsAnd+1), jsAnd
}

func (p *jsPrinter) relational(e *ast.RelationalOpExpr) (string, int) {
	if s, prec, ok := p.compareSpecial(e); ok {
		return s, prec
	}
	var op string
	switch e.Operator {
	case "==", "~=":
		if isNil(e.Lhs) || isNil(e.Rhs) {
			x := e.Lhs
			if isNil(x) {
				x = e.Rhs
			}
			op = " == null"
			if e.Operator == "~=" {
				op = " != null"
			}
			return p.operand(x, jsEquality+1) + op, jsEquality
		}
		op = " === "
		if e.Operator == "~=" {
			op = " !== "
		}
		return p.operand(e.Lhs, jsEquality) + op + p.operand(e.Rhs, jsEquality+1), jsEquality
	}
	l, r := p.operand(e.Lhs, jsRelational), p.operand(e.Rhs, jsRelational+1)
	return l + " " + e.Operator + " " + r, jsRelational
}

// concat prints a .. chain as a template literal, which always gives a
// string where + would add two numbers.
//
// TODO(migrate): numbers print as JavaScript prints them, which differs
// from Lua for very large and very small ones (1e21, 1e-7).
func (p *jsPrinter) concat(e *ast.StringConcatOpExpr) string {
	var parts []ast.Expr
	var flatten func(ast.Expr)
	flatten = func(x ast.Expr) {
		if c, ok := x.(*ast.StringConcatOpExpr); ok {
			flatten(c.Lhs)
			flatten(c.Rhs)
			return
		}
		parts = append(parts, x)
	}
	flatten(e)

	var b strings.Builder
	b.WriteByte('`')
	for _, part := range parts {
		switch x := part.(type) {
		case *ast.StringExpr:
			p.quote(x, x.Value)
			b.WriteString(templateEscape(x.Value))
		case *ast.NumberExpr:
			b.WriteString(jsNumber(x.Value))
		default:
			b.WriteString("${" + p.text(x) + "}")
		}
	}
	b.WriteByte('`')
	return b.String()
}

func templateEscape(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "`", "\\`", "${", "\\${", "\r", "\\r")
	return r.Replace(s)
}

func (p *jsPrinter) functionExpr(fn *ast.FunctionExpr) string {
	names := jsNames(p.a.params[fn])
	if fn.ParList.HasVargs {
		p.issue(fn, "...", "variable arguments: rewrite with an array parameter")
	}
	outer := p.fn
	p.fn = fn
	body := p.w.nested(func() {
		p.block(fn.Stmts, false)
		p.w.commentsBefore(fn.LastLine())
	})
	p.fn = outer
	return "function (" + strings.Join(names, ", ") + ") {\n" + body + p.w.indent() + "}"
}

func (p *jsPrinter) table(e *ast.TableExpr) string {
	if len(e.Fields) == 0 {
		if p.a.emptyAs[e] == shapeArray {
			return "[]"
		}
		return "{}"
	}
	last := e.Fields[len(e.Fields)-1]
	if last.Key == nil && multiValued(last.Value) && p.returnsMany(last.Value) {
		p.issue(last.Value, luaSource(last.Value), "several results of one call spread in a table")
	}
	t := p.a.tableType(e)
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		v := p.text(f.Value)
		switch k := f.Key.(type) {
		case nil:
			parts[i] = v
		case *ast.StringExpr:
			parts[i] = jsKey(k.Value) + ": " + v
		default:
			if t.s == shapeArray {
				parts[i] = v
			} else {
				parts[i] = "[" + p.text(k) + "]: " + v
			}
		}
	}
	open, close := "{ ", " }"
	switch t.s {
	case shapeArray:
		open, close = "[", "]"
	case shapeMixed:
		p.issue(e, luaSource(e), "a table with both positional and named fields: "+
			"JavaScript needs an array or an object")
	}
	return layout(open, close, parts, p.w.indent())
}

// jsKey prints an object literal's key.
func jsKey(name string) string {
	if isJSName(name) {
		return name
	}
	return jsQuote(name)
}

// layout joins parts on one line when they are short, else one a line.
func layout(open, close string, parts []string, indent string) string {
	one := open + strings.Join(parts, ", ") + close
	if len(one)+len(indent) <= 90 && !strings.Contains(one, "\n") {
		return one
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(open) + "\n")
	for _, part := range parts {
		b.WriteString(indent + "  " + part + ",\n")
	}
	b.WriteString(indent + strings.TrimSpace(close))
	return b.String()
}
