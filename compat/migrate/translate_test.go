package migrate

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// rule wraps body in a rule function that calls back at the end.
func rule(body string) string {
	return "return function(user, context, callback)\n" + body + "\ncallback(nil, user, context)\nend\n"
}

func mustTranslate(t *testing.T, src string) *Translation {
	t.Helper()
	tr, err := Translate("10-x.lua", []byte(src))
	if err != nil {
		t.Fatalf("Translate: %v\n%s", err, src)
	}
	return tr
}

// TestTranslate_JavaScript pins how constructs translate, as Auth0's
// migration guide maps them and as Lua's meaning requires.
func TestTranslate_JavaScript(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // in the generated code.js
	}{
		// Auth0's guide: context fields become event fields.
		{"client id", `local x = context.clientID`, []string{"const x = event.client.client_id;"}},
		{"client name", `local x = context.clientName`, []string{"const x = event.client.name;"}},
		{"metadata", `local x = context.clientMetadata.tier`, []string{"const x = event.client.metadata.tier;"}},
		{"protocol", `local x = context.protocol`, []string{"const x = event.transaction.protocol;"}},
		{"tenant", `local x = context.tenant`, []string{"const x = event.tenant.id;"}},
		{"user agent", `local x = context.request.userAgent`, []string{"const x = event.request.user_agent;"}},
		{"ip", `local x = context.request.ip`, []string{"const x = event.request.ip;"}},
		{"query, which Auth0 may not send", `local x = context.request.query.debug`,
			[]string{"const x = event.request.query?.debug;"}},
		{"configuration", `local x = configuration.API_KEY`, []string{"const x = event.secrets.API_KEY;"}},
		{"configuration by string key", `local x = configuration["api-key"]`,
			[]string{"const x = event.secrets['api-key'];"}},

		// Scopes go through api.transaction.
		{"clear scopes", `context.accessToken.scope = {}`, []string{"api.transaction.clearTargetScopes();"}},
		{"scopes as a string", `context.accessToken.scope = "read:a  write:a"`,
			[]string{"api.transaction.setTargetScopes(['read:a', 'write:a']);"}},
		{"add a scope", `table.insert(context.accessToken.scope, "read:b")`,
			[]string{"api.transaction.addTargetScope('read:b');"}},
		{"a later read sees the edit", `table.insert(context.accessToken.scope, "read:b")
local n = #context.accessToken.scope`, []string{
			"const scopes = [...event.transaction.target_scopes];", "scopes.push('read:b');",
			"api.transaction.addTargetScope('read:b');", "const n = scopes.length;"}},
		{"claim", `context.accessToken["https://example.com/a"] = 1`,
			[]string{"api.accessToken.setCustomClaim('https://example.com/a', 1);"}},

		// Lua's truth, equality and nil.
		{"or on a string", `local x = context.clientMetadata.tier or "free"`,
			[]string{"event.client.metadata.tier ?? 'free'"}},
		{"or on any JSON value", `local x = context.request.body.flag or "d"`,
			[]string{"luaTruthy(event.request.body.flag) ? event.request.body.flag : 'd'"}},
		{"if on a string", `if context.clientMetadata.tier then end`,
			[]string{"if (event.client.metadata.tier != null) {"}},
		{"if on a boolean", `local b = context.clientID == "a"
if b then end`, []string{"if (b) {"}},
		{"not nil", `if context.clientMetadata.tier ~= nil then end`,
			[]string{"if (event.client.metadata.tier != null) {"}},
		{"not", `if not context.clientMetadata.tier then end`,
			[]string{"if (event.client.metadata.tier == null) {"}},
		{"equality", `if context.clientID == "a" then end`, []string{"if (event.client.client_id === 'a') {"}},
		{"and-or conditional", `local x = context.clientID == "a" and "yes" or "no"`,
			[]string{"const x = event.client.client_id === 'a' ? 'yes' : 'no';"}},
		{"nil", `local x = nil`, []string{"let x;"}},

		// Strings.
		{"concatenation", `local x = "client " .. context.clientID .. "!"`,
			[]string{"const x = `client ${event.client.client_id}!`;"}},
		{"lower", `local x = string.lower(context.clientID)`, []string{"event.client.client_id.toLowerCase()"}},
		{"method call", `local x = context.clientID:upper()`, []string{"event.client.client_id.toUpperCase()"}},
		{"sub with literals", `local x = string.sub(context.clientID, 2, -2)`,
			[]string{"event.client.client_id.slice(1, -1)"}},
		{"plain find as a condition", `if string.find(context.clientID, "-", 1, true) then end`,
			[]string{"if (event.client.client_id.includes('-')) {"}},
		{"find == nil", `if context.clientID:find("test") == nil then end`,
			[]string{"if (!event.client.client_id.includes('test')) {"}},
		{"anchored find", `if context.clientID:find("^svc") then end`,
			[]string{"if (event.client.client_id.startsWith('svc')) {"}},
		{"format", `local x = string.format("%s=%d%%", context.clientID, 5)`,
			[]string{"const x = `${event.client.client_id}=${Math.trunc(5)}%`;"}},
		{"gmatch", `for w in string.gmatch(context.clientID, "[^,]+") do end`,
			[]string{"for (const w of event.client.client_id.match(/[^,]+/g) ?? []) {"}},
		{"type test", `if type(context.request.body.x) == "string" then end`,
			[]string{"if (typeof event.request.body.x === 'string') {"}},
		{"tonumber", `local n = tonumber(context.clientMetadata.limit)`,
			[]string{"const n = luaToNumber(event.client.metadata.limit);", "function luaToNumber(v) {"}},

		// Tables: arrays count from 1 in Lua, from 0 in JavaScript.
		{"array index", `local t = {"a", "b"}
local x = t[2]`, []string{"const t = ['a', 'b'];", "const x = t[1];"}},
		{"append", `local t = {}
t[#t + 1] = "a"`, []string{"const t = [];", "t.push('a');"}},
		{"object", `local t = {}
t.a = 1
t["b-c"] = 2`, []string{"const t = {};", "t.a = 1;", "t['b-c'] = 2;"}},
		{"delete a key", `local t = { a = 1 }
t.a = nil`, []string{"delete t.a;"}},
		{"ipairs", `for _, v in ipairs({"a"}) do end`, []string{"for (const v of ['a']) {"}},
		{"ipairs with the index", `local t = {"a"}
for i, v in ipairs(t) do local x = i end`, []string{"for (let i = 1; i <= t.length; i++) {", "const v = t[i - 1];"}},
		{"pairs", `for k, v in pairs(context.clientMetadata) do local x = k .. v end`,
			[]string{"for (const [k, v] of Object.entries(event.client.metadata)) {"}},
		{"pairs, keys only", `for k in pairs(context.clientMetadata) do local x = k end`,
			[]string{"for (const k of Object.keys(event.client.metadata)) {"}},
		{"numeric for", `for i = 1, 3 do end`, []string{"for (let i = 1; i <= 3; i++) {"}},
		{"numeric for, down", `for i = 10, 1, -2 do end`, []string{"for (let i = 10; i >= 1; i -= 2) {"}},
		{"concat", `local x = table.concat({"a", "b"}, " ")`, []string{"const x = ['a', 'b'].join(' ');"}},
		{"modulo", `local x = #context.clientID % 3`,
			[]string{"const x = luaMod(event.client.client_id.length, 3);", "function luaMod(a, b) {"}},

		// Names JavaScript reads differently.
		{"shadowing", `local x = 1
do local x = x + 1 end`, []string{"const x = 1;", "const x2 = x + 1;"}},
		{"reserved name", `local event = 1
local new = event`, []string{"const event2 = 1;", "const new2 = event2;"}},

		// Methods: Lua passes the receiver as self.
		{"method", `local counter = { n = 0 }
function counter:add(k) self.n = self.n + k end
counter:add(2)`, []string{"counter.add = function (self, k) {", "self.n = Number(self.n) + Number(k);", "counter.add(counter, 2);"}},

		// Denials.
		{"error(UnauthorizedError)", `if context.clientID == "x" then error(UnauthorizedError("no")) end`,
			[]string{"api.access.deny('invalid_request', 'no');\n    return;"}},
		{"error(msg)", `if context.clientID == "x" then error("boom") end`,
			[]string{"throw new Error('boom');"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustTranslate(t, rule(tt.body))
			for _, want := range tt.want {
				if !strings.Contains(tr.JS, want) {
					t.Errorf("code.js does not contain %q:\n%s", want, tr.JS)
				}
			}
			if len(tr.Issues) > 0 {
				t.Errorf("issues: got %+v, want none", tr.Issues)
			}
		})
	}
}

// TestTranslate_Callback pins the ends of a rule: callback(nil, ...) is a
// return, UnauthorizedError a denial with invalid_request.
func TestTranslate_Callback(t *testing.T) {
	src := `return function(user, context, callback)
  if context.clientMetadata.blocked == "yes" then
    return callback(UnauthorizedError("blocked " .. context.clientID))
  end
  if context.clientMetadata.quiet == "yes" then
    return callback(nil, user, context)
  end
  context.accessToken["https://example.com/a"] = 1
  callback(nil, user, context)
end`
	tr := mustTranslate(t, src)
	wantJS := "exports.onExecuteCredentialsExchange = async (event, api) => {\n" +
		"  if (event.client.metadata.blocked === 'yes') {\n" +
		"    api.access.deny('invalid_request', `blocked ${event.client.client_id}`);\n" +
		"    return;\n" +
		"  }\n" +
		"  if (event.client.metadata.quiet === 'yes') {\n" +
		"    return;\n" +
		"  }\n" +
		"  api.accessToken.setCustomClaim('https://example.com/a', 1);\n" +
		"};\n"
	if !strings.HasSuffix(tr.JS, wantJS) {
		t.Errorf("code.js: got\n%s\nwant it to end with\n%s", tr.JS, wantJS)
	}
	wantLua := "return {\n" +
		"  onExecuteCredentialsExchange = function(event, api)\n" +
		"    if event.client.metadata.blocked == \"yes\" then\n" +
		"      api.access.deny(\"invalid_request\", \"blocked \" .. event.client.client_id)\n" +
		"      return\n" +
		"    end\n" +
		"    if event.client.metadata.quiet == \"yes\" then\n" +
		"      return\n" +
		"    end\n" +
		"    api.accessToken.setCustomClaim(\"https://example.com/a\", 1)\n" +
		"  end,\n" +
		"}\n"
	if !strings.HasSuffix(tr.Lua, wantLua) {
		t.Errorf("Lua action: got\n%s\nwant it to end with\n%s", tr.Lua, wantLua)
	}
	if len(tr.Issues) > 0 {
		t.Errorf("issues: got %+v, want none", tr.Issues)
	}
}

// TestTranslate_Issues pins what is reported rather than guessed at, and
// for which translation.
func TestTranslate_Issues(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line      int
		construct string
		reason    string // a part of it
		jsOnly    bool
	}{
		{"global", rule(`global.n = 1`), 2, "global", "no equivalent", false},
		{"user", rule(`local e = user.email`), 2, "user", "no user", false},
		{"id token", rule(`local n = context.idToken.nonce`), 2, "context.idToken.nonce", "no counterpart", false},
		{"connection", rule(`local c = context.connection`), 2, "context.connection", "no counterpart", false},
		{"request as a whole", rule(`local r = context.request`), 2, "context.request", "as a whole", false},
		{"reading a claim", rule(`local c = context.accessToken["https://x/c"]`), 2,
			`context.accessToken["https://x/c"]`, "reads a custom claim", false},
		{"writing the context", rule(`context.clientMetadata.x = "y"`), 2, "context.clientMetadata.x", "writes to the context", false},
		{"scope edited through a variable", rule(`local s = context.accessToken.scope
table.insert(s, "x")`), 3, `table.insert(s, "x")`, "edits the scope table in place", false},
		{"scope passed on", rule(`local function f(t) end
f(context.accessToken.scope)`), 3, "context.accessToken.scope", "the scope table used as a value", false},
		{"scope read after a string", rule(`context.accessToken.scope = "a b"
local n = #context.accessToken.scope`), 3, "context.accessToken.scope", "after assigning it a string", false},
		{"code after callback", `return function(user, context, callback)
  callback(nil, user, context)
  context.accessToken["https://x/c"] = 1
end`, 2, "callback(nil, user, context)", "keeps running", false},
		{"no callback", `return function(user, context, callback)
  context.accessToken["https://x/c"] = 1
end`, 1, "function(user, context, callback)", "without calling callback", false},
		{"another error", `return function(user, context, callback)
  callback("boom")
end`, 2, `callback("boom")`, "other than UnauthorizedError", false},
		{"callback in a function", rule(`local function done() callback(nil, user, context) end`), 2,
			"callback(nil, user, context)", "nested function", false},
		{"undefined global", rule(`local x = helper_from_rule_one()`), 2, "helper_from_rule_one", "never sets", false},
		{"configuration written", rule(`configuration.X = 1`), 2, "configuration.X", "read-only", false},
		{"configuration outside the rule", "local ns = configuration.NS\n" + rule(``), 1,
			"configuration.NS", "outside the rule function", false},
		{"pcall", rule(`local ok = pcall(error, "x")`), 2, `pcall(error, "x")`, "no JavaScript translation", true},
		{"setmetatable", rule(`local t = setmetatable({}, {})`), 2, "setmetatable({}, {})", "no JavaScript translation", true},
		{"pattern", rule(`local x = string.match(context.clientID, "%d+")`), 2,
			`string.match(context.clientID, "%d+")`, "no JavaScript translation", true},
		{"gsub pattern", rule(`local x = context.clientID:gsub("%s", "")`), 2,
			`context.clientID:gsub("%s", "")`, "only plain text", true},
		{"goto", rule(`goto done
::done::`), 2, "goto done", "no JavaScript equivalent", true},
		{"varargs", rule(`local function f(...) return ... end`), 2, "...", "variable arguments", true},
		{"json.encode", rule(`local s = json.encode({a = 1})`), 2, "json.encode({ a = 1 })", "orders keys", true},
		{"mixed table", rule(`local t = {1, a = 2}`), 2, "{ 1, a = 2 }", "both positional and named", true},
		{"or on a call", rule(`local x = json.decode(context.clientID) or 1`), 2,
			"json.decode(context.clientID) or 1", "may be false, 0 or ''", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustTranslate(t, tt.src)
			var found *Issue
			for i, is := range tr.Issues {
				if is.Line == tt.line && strings.Contains(is.Construct, tt.construct) && strings.Contains(is.Reason, tt.reason) {
					found = &tr.Issues[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("issues: got %+v, want one on line %d for %q (%q)", tr.Issues, tt.line, tt.construct, tt.reason)
			}
			if found.File != "10-x.lua" {
				t.Errorf("file: got %q, want 10-x.lua", found.File)
			}
			if found.JSOnly != tt.jsOnly {
				t.Errorf("JSOnly: got %v, want %v", found.JSOnly, tt.jsOnly)
			}
			todo := fmt.Sprintf("TODO(migrate): line %d: %s: %s", found.Line, found.Construct, found.Reason)
			if !strings.Contains(tr.JS, "// "+todo) {
				t.Errorf("code.js has no %q:\n%s", todo, tr.JS)
			}
			if got := strings.Contains(tr.Lua, "-- "+todo); got == tt.jsOnly {
				t.Errorf("Lua action has the TODO: got %v, want %v:\n%s", got, !tt.jsOnly, tr.Lua)
			}
			if tr.Complete(FormatAuth0) {
				t.Error("Complete(auth0): got true, want false")
			}
			if got := tr.Complete(FormatLua); got != tt.jsOnly {
				t.Errorf("Complete(lua): got %v, want %v", got, tt.jsOnly)
			}
		})
	}
}

// TestTranslate_Untranslatable: a rule full of constructs with no
// equivalent has each reported with its line, a TODO at that place in
// the code, and is left out of the differential check.
func TestTranslate_Untranslatable(t *testing.T) {
	src, err := os.ReadFile("testdata/untranslatable/80-legacy.lua")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Translate("testdata/untranslatable/80-legacy.lua", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line      int
		construct string
		jsOnly    bool
	}{
		{3, `setmetatable({}, { __mode = "k" })`, true},
		{5, "...", true},
		{10, "global", false},
		{11, `pcall(json.decode, context.request.body.payload or "")`, true},
		{13, `callback(new_error("bad payload"))`, false},
		{13, "new_error", false},
		{15, "user", false},
		{16, "context.idToken.nonce", false},
		{17, `string.gsub(context.clientID, "%D", "")`, true},
	}
	for _, w := range want {
		i := slices.IndexFunc(tr.Issues, func(is Issue) bool { return is.Line == w.line && is.Construct == w.construct })
		if i < 0 {
			t.Errorf("no issue for %q on line %d in %+v", w.construct, w.line, tr.Issues)
			continue
		}
		if tr.Issues[i].JSOnly != w.jsOnly {
			t.Errorf("%q: JSOnly got %v, want %v", w.construct, tr.Issues[i].JSOnly, w.jsOnly)
		}
	}
	// global is used twice on line 10: reported once.
	if n := countIssues(tr.Issues, 10, "global"); n != 1 {
		t.Errorf("global on line 10: got %d issues, want 1", n)
	}
	for _, is := range tr.Issues {
		todo := fmt.Sprintf("TODO(migrate): line %d: %s", is.Line, is.Construct)
		if !strings.Contains(tr.JS, "// "+todo) {
			t.Errorf("code.js has no %q", todo)
		}
		if !is.JSOnly && !strings.Contains(tr.Lua, "-- "+todo) {
			t.Errorf("Lua action has no %q", todo)
		}
	}
	// The TODO stands right above the statement it is about.
	if !strings.Contains(tr.JS, "// TODO(migrate): line 15: user: client credentials have no user: "+
		"user is an empty table in rulesgate, and an action has no user at all\n  const email = ({}).email;") {
		t.Errorf("the TODO for user is not above its statement:\n%s", tr.JS)
	}
	if differential(tr) {
		t.Error("an untranslatable rule takes part in the differential check")
	}
	if tr.Complete(FormatLua) {
		t.Error("Complete(lua): got true, want false")
	}

	report := string(Report(FormatBoth, []*Translation{tr}))
	for _, want := range []string{
		"| `80-legacy.lua` | 15 constructs to review | 5 constructs to review |",
		"| 10 | `global` | JavaScript and Lua |",
		"| 17 | `string.gsub(context.clientID, \"%D\", \"\")` | JavaScript |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("MIGRATION.md has no %q:\n%s", want, report)
		}
	}
}

func countIssues(issues []Issue, line int, construct string) int {
	n := 0
	for _, is := range issues {
		if is.Line == line && is.Construct == construct {
			n++
		}
	}
	return n
}

// TestTranslate_Errors: a rule that does not compile or has not the
// Rules shape is an error naming its file and line.
func TestTranslate_Errors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"syntax error", "return function(user, context, callback)\n  local x = = 1\nend\n",
			[]string{"migrate 10-x.lua: line 2:", "syntax error"}},
		{"unclosed function", "return function(user, context, callback)\n  local x = 1\n",
			[]string{"migrate 10-x.lua:", "end of the file"}},
		{"compile error", "return function(user, context, callback)\n  goto nowhere\nend\n",
			[]string{"migrate 10-x.lua: line ", "nowhere"}},
		{"not a rule", "local x = 1\nreturn x\n", []string{"migrate 10-x.lua: line 2:", "return function(user, context, callback)"}},
		{"empty file", "", []string{"migrate 10-x.lua: line 1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Translate("rules/10-x.lua", []byte(tt.src))
			if err == nil {
				t.Fatal("Translate: got nil, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestTranslate_Comments: the rule's comments stay where they were, and
// a "--" inside a string is no comment.
func TestTranslate_Comments(t *testing.T) {
	src := `-- Header.
return function(user, context, callback)
  -- Why the claim.
  context.accessToken["https://example.com/a"] = "--not a comment" -- trailing
  --[[ A block
  comment. ]]
  callback(nil, user, context)
end
`
	tr := mustTranslate(t, src)
	for _, want := range []string{"// Header.\n", "  // Why the claim.\n  api.accessToken", "// trailing\n",
		"  // A block\n  //  comment.\n"} {
		if !strings.Contains(tr.JS, want) {
			t.Errorf("code.js does not contain %q:\n%s", want, tr.JS)
		}
	}
	if strings.Contains(tr.JS, "// not a comment") || !strings.Contains(tr.JS, "'--not a comment'") {
		t.Errorf("a string taken for a comment:\n%s", tr.JS)
	}
	if !strings.Contains(tr.Lua, "-- Header.\n") || !strings.Contains(tr.Lua, "    -- Why the claim.\n") {
		t.Errorf("Lua action lost the comments:\n%s", tr.Lua)
	}
}

// TestTranslate_Secrets: the configuration keys a rule reads are the
// action's secrets.
func TestTranslate_Secrets(t *testing.T) {
	tr := mustTranslate(t, rule(`local a = configuration.B_KEY
local b = configuration["A_KEY"] or configuration.B_KEY`))
	if want := []string{"A_KEY", "B_KEY"}; !slices.Equal(tr.Secrets, want) {
		t.Errorf("secrets: got %v, want %v", tr.Secrets, want)
	}
}
