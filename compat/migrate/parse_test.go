package migrate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rulesgate/rulesgate/rules"
)

// oddRules are rules with constructs the differential rules do not use,
// translated or reported.
var oddRules = map[string]string{
	"closures": rule(`local function make(n)
  return function(k) return n + k end
end
local add2 = make(2)
context.accessToken["https://x/a"] = add2(1)`),
	"varargs": rule(`local function f(...) local t = {...} return #t end
local n = f(1, 2)`),
	"goto": rule(`for i = 1, 3 do
  if i == 2 then goto continue end
  ::continue::
end`),
	"loops": rule(`local i = 0
while true do
  i = i + 1
  if i > 3 then break end
end
repeat local j = i; i = i - 1 until j < 2
local step = context.clientMetadata.step or 1
for k = 10, 1, -step do i = i + k end
for k = 1, 3, step do i = i + k end`),
	"assignments": rule(`local a, b = 1, 2
a, b = b, a
local t = { x = { y = {} } }
t.x.y.z = a
local c, d = string.find(context.clientID, "a", 1, true)`),
	"strings": rule(`local s = "quote ' \" back \\ nl \n tab \t nul \0 done"
local u = "héllo ` + "`${x}`" + `"
local bad = "\255"
local long = [[
line one
line two]]
local x = s .. u .. long .. bad`),
	"numbers": rule(`local a, b, c, d = 0x10, 1e3, .5, 010
local e = -a ^ 2 + 2 ^ -1
local f = not not a`),
	"calls": rule(`local function f() return 1, 2 end
local x = (f())
local y = { f() }
print("a", 1)
assert(x, "no x")
assert(y)
local z = tostring(nil) .. tostring(1.5)
local j = json.decode("{}")
local w = string.format("%q", "a")`),
	"patterns": rule(`for k, v in string.gmatch("a=1", "(%w+)=(%w+)") do end
for w in string.gmatch("a b", "%a+") do end
local m = ("x"):rep(3)`),
	"context": rule(`context.accessToken.scope[1] = "x"
local e = user.x.y
local c = context
local r = context["request"]
local q = context.request.query
local n = context.request.query.n`),
	"callbacks": `return function(user, context, callback)
  local function fail() callback(UnauthorizedError("x")) end
  if context.clientID == "a" then
    fail()
    return
  end
  if context.clientID == "b" then
    error()
  end
  callback(nil, user, context)
  callback(nil, user, context)
end`,
	"no params": `return function() end`,
	"prelude": `local M = {}
function M.helper(x) return x end
function M:method() return self end
shared = 1
function global_fn(a) return a end
return function(user, context, callback)
  shared = shared + 1
  local v = M.helper(global_fn(shared))
  callback(nil, user, context)
end`,
}

// TestTranslate_Parses: whatever a rule holds, the JavaScript parses in
// Node.js and the Lua action compiles, TODOs and all.
func TestTranslate_Parses(t *testing.T) {
	node := nodePath(t)
	codes := map[string]string{}
	for name, src := range oddRules {
		tr, err := Translate(name+".lua", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		codes[name] = tr.JS
		if _, err := rules.Compile(name+".lua", []byte(tr.Lua)); err != nil {
			t.Errorf("%s: the Lua action does not compile: %v\n%s", name, err, tr.Lua)
		}
	}
	files, _ := filepath.Glob("testdata/*/*.lua")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := Translate(file, src)
		if err != nil {
			t.Fatal(err)
		}
		codes[file] = tr.JS
	}

	// One Node.js process checks them all.
	const check = `const vm = require('vm');
const codes = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const bad = {};
for (const [name, code] of Object.entries(codes)) {
  try { new vm.Script('(function (exports) {' + code + '\n})', { filename: name }); }
  catch (err) { bad[name] = String(err); }
}
process.stdout.write(JSON.stringify(bad));`
	input, _ := json.Marshal(codes)
	cmd := exec.Command(node, "-e", check)
	cmd.Stdin = bytes.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var bad map[string]string
	if err := json.Unmarshal(out, &bad); err != nil {
		t.Fatal(err)
	}
	for name, msg := range bad {
		t.Errorf("%s: code.js does not parse: %s\n%s", name, msg, codes[name])
	}
	if len(codes) < len(oddRules)+15 {
		t.Errorf("checked %d translations, want every odd rule and test rule", len(codes))
	}
}
