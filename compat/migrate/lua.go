package migrate

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/gopher-lua/ast"
)

// Lua operator precedences, loosest first (Lua 5.1 manual §2.5.6).
const (
	luaOr = iota + 1
	luaAnd
	luaCompare
	luaConcat
	luaAdd
	luaMul
	luaUnary
	luaPow
	luaPrimary
)

// luaExprs prints Lua expressions. hook, when set, prints a node itself:
// the action printer uses it to write the event for the context.
type luaExprs struct {
	hook func(e ast.Expr) (string, bool)
	// fn prints a function expression's body; nil prints "...".
	fn func(e *ast.FunctionExpr) string
}

// luaSource returns e as Lua source on one line, shortened, to name a
// construct in a report.
func luaSource(e ast.Expr) string {
	s, _ := luaExprs{}.expr(e)
	if len(s) > 70 {
		s = s[:67] + "..."
	}
	return s
}

func (p luaExprs) list(es []ast.Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i], _ = p.expr(e)
	}
	return strings.Join(parts, ", ")
}

// operand prints e, in parentheses when it binds looser than min.
func (p luaExprs) operand(e ast.Expr, min int) string {
	s, prec := p.expr(e)
	if prec < min {
		return "(" + s + ")"
	}
	return s
}

// prefix prints e where Lua wants a prefix expression: before [, . or (.
func (p luaExprs) prefix(e ast.Expr) string {
	s, _ := p.expr(e)
	switch e.(type) {
	case *ast.IdentExpr, *ast.AttrGetExpr, *ast.FuncCallExpr:
		return s
	}
	return "(" + s + ")"
}

// expr prints e and returns its precedence.
func (p luaExprs) expr(e ast.Expr) (string, int) {
	if p.hook != nil {
		if s, ok := p.hook(e); ok {
			return s, luaPrimary
		}
	}
	switch e := e.(type) {
	case *ast.NilExpr:
		return "nil", luaPrimary
	case *ast.TrueExpr:
		return "true", luaPrimary
	case *ast.FalseExpr:
		return "false", luaPrimary
	case *ast.NumberExpr:
		return e.Value, luaPrimary
	case *ast.StringExpr:
		return luaQuote(e.Value), luaPrimary
	case *ast.Comma3Expr:
		return "...", luaPrimary
	case *ast.IdentExpr:
		return e.Value, luaPrimary
	case *ast.AttrGetExpr:
		return p.index(e), luaPrimary
	case *ast.FuncCallExpr:
		return p.call(e), luaPrimary
	case *ast.LogicalOpExpr:
		prec := luaOr
		if e.Operator == "and" {
			prec = luaAnd
		}
		return p.operand(e.Lhs, prec) + " " + e.Operator + " " + p.operand(e.Rhs, prec+1), prec
	case *ast.RelationalOpExpr:
		return p.operand(e.Lhs, luaCompare) + " " + e.Operator + " " + p.operand(e.Rhs, luaCompare+1), luaCompare
	case *ast.StringConcatOpExpr:
		return p.operand(e.Lhs, luaConcat+1) + " .. " + p.operand(e.Rhs, luaConcat), luaConcat
	case *ast.ArithmeticOpExpr:
		return p.arith(e)
	case *ast.UnaryMinusOpExpr:
		return "-" + p.operand(e.Expr, luaUnary), luaUnary
	case *ast.UnaryNotOpExpr:
		return "not " + p.operand(e.Expr, luaUnary), luaUnary
	case *ast.UnaryLenOpExpr:
		return "#" + p.operand(e.Expr, luaUnary), luaUnary
	case *ast.FunctionExpr:
		return p.function(e), luaPrimary
	case *ast.TableExpr:
		return p.table(e), luaPrimary
	}
	return "nil", luaPrimary
}

func (p luaExprs) arith(e *ast.ArithmeticOpExpr) (string, int) {
	switch e.Operator {
	case "^":
		return p.operand(e.Lhs, luaPow+1) + "^" + p.operand(e.Rhs, luaPow), luaPow
	case "+", "-":
		return p.operand(e.Lhs, luaAdd) + " " + e.Operator + " " + p.operand(e.Rhs, luaAdd+1), luaAdd
	}
	return p.operand(e.Lhs, luaMul) + " " + e.Operator + " " + p.operand(e.Rhs, luaMul+1), luaMul
}

func (p luaExprs) index(e *ast.AttrGetExpr) string {
	obj := p.prefix(e.Object)
	if k, ok := e.Key.(*ast.StringExpr); ok && isLuaName(k.Value) {
		return obj + "." + k.Value
	}
	key, _ := p.expr(e.Key)
	return obj + "[" + key + "]"
}

func (p luaExprs) call(e *ast.FuncCallExpr) string {
	var s string
	if e.Receiver != nil {
		s = p.prefix(e.Receiver) + ":" + e.Method + "(" + p.list(e.Args) + ")"
	} else {
		s = p.prefix(e.Func) + "(" + p.list(e.Args) + ")"
	}
	if e.AdjustRet {
		return "(" + s + ")" // keeps only the first result
	}
	return s
}

func (p luaExprs) function(e *ast.FunctionExpr) string {
	params := append([]string(nil), e.ParList.Names...)
	if e.ParList.HasVargs {
		params = append(params, "...")
	}
	head := "function(" + strings.Join(params, ", ") + ")"
	if p.fn == nil {
		return head + " ... end"
	}
	return head + "\n" + p.fn(e) + "end"
}

func (p luaExprs) table(e *ast.TableExpr) string {
	if len(e.Fields) == 0 {
		return "{}"
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		v, _ := p.expr(f.Value)
		switch k := f.Key.(type) {
		case nil:
			parts[i] = v
		case *ast.StringExpr:
			if isLuaName(k.Value) {
				parts[i] = k.Value + " = " + v
			} else {
				parts[i] = "[" + luaQuote(k.Value) + "] = " + v
			}
		default:
			key, _ := p.expr(k)
			parts[i] = "[" + key + "] = " + v
		}
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// luaKeywords are Lua's reserved words, which cannot be field names after
// a dot.
var luaKeywords = wordSet(`and break do else elseif end false for function goto
	if in local nil not or repeat return then true until while`)

// isLuaName reports whether s can be written t.s in Lua.
func isLuaName(s string) bool {
	if s == "" || luaKeywords[s] {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// luaQuote returns s as a Lua string literal. Control bytes, and the
// bytes of a string that is not UTF-8 text, are written as \ddd.
func luaQuote(s string) string {
	raw := utf8.ValidString(s)
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f || c >= 0x80 && !raw:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
