package migrate

import (
	"strconv"
	"strings"
)

// jsReserved are names a rule's variable cannot keep in JavaScript: the
// language's reserved words, the globals and helpers the generated code
// uses, and the action's parameters.
var jsReserved = wordSet(`break case catch class const continue debugger default
	delete do else enum export extends false finally for function if import in
	instanceof new null return super switch this throw true try typeof var void
	while with yield let static implements interface package private protected
	public await arguments eval undefined NaN Infinity event api scopes exports
	module require Object String Number Math JSON Array Boolean Error console
	globalThis process Symbol Date Promise Set Map RegExp parseInt parseFloat
	isNaN ruleGlobal luaTruthy luaToNumber luaToString luaType luaMod luaSub
	toScopes`)

// luaReserved are names a rule's variable cannot keep in the Lua action:
// the action's parameters and what the generated code adds.
var luaReserved = wordSet(`event api scopes toScopes ruleGlobal`)

func wordSet(words string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Fields(words) {
		set[w] = true
	}
	return set
}

// name gives every variable its names in the generated code. A variable
// keeps its name unless that is reserved or it shadows a variable in
// view: JavaScript refuses let x twice in a block and reads "let x = x"
// as the new x, where Lua allows both.
func (a *analysis) name() {
	// Globals first: every local sees all of them.
	for _, global := range []bool{true, false} {
		for _, v := range a.vars {
			if (v.role == roleGlobal) != global || !v.printed() {
				continue
			}
			visible := a.visible(v)
			v.js = pick(v.name, visible, func(w *variable) string { return w.js }, jsReserved)
			v.lua = pick(v.name, visible, func(w *variable) string { return w.lua }, luaReserved)
		}
	}
}

// printed reports whether v appears in the generated code: the rule's
// parameters do not, the action has others.
func (v *variable) printed() bool {
	return v.role != roleUser && v.role != roleContext && v.role != roleCallback
}

// visible returns the variables in view where v is declared, and every
// file global.
func (a *analysis) visible(v *variable) []*variable {
	var out []*variable
	for _, w := range a.vars {
		if w == v || !w.printed() {
			continue
		}
		if w.role == roleGlobal || (w.seq < v.seq && encloses(w.scope, v.scope)) {
			out = append(out, w)
		}
	}
	return out
}

// encloses reports whether scope outer is inner or one of its parents.
func encloses(outer, inner *scope) bool {
	for s := inner; s != nil; s = s.parent {
		if s == outer {
			return true
		}
	}
	return false
}

// pick returns name, or name with the first free number appended when
// name is reserved, shadows a visible variable or is taken by one.
func pick(name string, visible []*variable, nameOf func(*variable) string, reserved map[string]bool) string {
	taken := map[string]bool{}
	shadows := false
	for _, w := range visible {
		taken[nameOf(w)] = true
		shadows = shadows || w.name == name
	}
	if !shadows && !taken[name] && !reserved[name] {
		return name
	}
	for i := 2; ; i++ {
		if c := name + strconv.Itoa(i); !taken[c] && !reserved[c] {
			return c
		}
	}
}

// fresh returns a name for a temporary of the generated code that no
// variable of the rule has in either language, and that fresh has not
// returned before.
func (a *analysis) fresh(base string, used map[string]bool) string {
	taken := func(c string) bool {
		if used[c] || jsReserved[c] || luaReserved[c] {
			return true
		}
		for _, v := range a.vars {
			if v.js == c || v.lua == c || v.name == c {
				return true
			}
		}
		return false
	}
	c := base
	for i := 2; taken(c); i++ {
		c = base + strconv.Itoa(i)
	}
	used[c] = true
	return c
}
