package compat

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rulesgate/rulesgate/rules"
)

// Property tests of Auth0's guards: for random grants, requests and
// extension programs (rules, a hook, actions) that edit scopes and claims,
// the pipeline's result is what a plain model of the programs predicts,
// cut by the guards: scopes within the grant, no restricted claim, and the
// same result for the same input. Each case is a subtest named after its
// seed; rerun one with -run 'TestPipeline_PropertyGuards/seed=N'.

// propScopePool are the scope names programs use: those that may be
// granted, and others no grant holds (wrong case, a trailing space, two
// scopes in one string, the empty string).
var propScopePool = []string{"read:a", "write:a", "read:b", "admin", "delete:all", "openid"}

var propScopeOutsiders = []string{"superuser", "READ:A", "read:a ", "read:a write:a", "", "read:*"}

// propClaim is a claim name with whether Auth0 restricts it, as decided
// here from Auth0's list rather than read from Restricted.
type propClaim struct {
	name       string
	restricted bool
}

var propClaims = []propClaim{
	{"iss", true}, {"exp", true}, {"sub", true}, {"aud", true}, {"scp", true},
	{"gty", true}, {"azp", true}, {"client_id", true}, {"permissions", true},
	{"nbf", true}, {"iat", true}, {"jti", true}, {"roles", true}, {"sip_tenant", true},
	{"https://tenant.auth0.com/claim", true}, {"HTTPS://TENANT.AUTH0.COM/claim", true},
	{"urn:auth0:role", true}, {"https://x.webtask.io/c", true}, {"https://tenant.auth0.com./c", true},
	{"https://example.com/tenant", false}, {"https://example.com/roles", false},
	{"tenant", false}, {"ISS", false}, {"scope ", false}, {"Scope", false},
	{"https://auth0.com.example.net/c", false}, {"urn:example:auth0", false},
}

// propModel is what the programs should leave, computed in Go.
type propModel struct {
	kind   string // what context.accessToken.scope holds: "table", "string" or "nil"
	scopes []string
	claims map[string]any
}

// propGen builds random programs, and the model's expectation alongside.
type propGen struct {
	r *rand.Rand
}

func (g propGen) pick(list []string) string { return list[g.r.IntN(len(list))] }

// scopeName returns a scope name, most often one that may be granted.
func (g propGen) scopeName() string {
	if g.r.IntN(4) == 0 {
		return g.pick(propScopeOutsiders)
	}
	return g.pick(propScopePool)
}

func (g propGen) scopeNames(max int) []string {
	out := make([]string, g.r.IntN(max+1))
	for i := range out {
		out[i] = g.scopeName()
	}
	return out
}

// value returns a claim value as Lua source and as its JSON shape.
func (g propGen) value(depth int) (string, any) {
	switch n := g.r.IntN(8); {
	case n == 0:
		s := g.pick([]string{"gold", "", "ünïcödé", `quote"d`, "new\nline", "back\\slash", "https://x.example/"})
		return propLuaString(s), s
	case n == 1:
		i := g.r.Int64N(2_000_001) - 1_000_000
		return strconv.FormatInt(i, 10), i
	case n == 2:
		f := float64(g.r.Int64N(20_000)-10_000) + 0.5
		return strconv.FormatFloat(f, 'g', -1, 64), f
	case n == 3:
		b := g.r.IntN(2) == 0
		return strconv.FormatBool(b), b
	case n == 4 && depth < 2:
		var src []string
		var arr []any
		for range 1 + g.r.IntN(3) {
			s, v := g.value(depth + 1)
			src, arr = append(src, s), append(arr, v)
		}
		return "{" + strings.Join(src, ", ") + "}", arr
	case n == 5 && depth < 2:
		obj := map[string]any{}
		var src []string
		for range g.r.IntN(3) {
			k := g.pick([]string{"a", "b", "tier", "x-y"})
			s, v := g.value(depth + 1)
			if _, dup := obj[k]; dup {
				continue
			}
			obj[k] = v
			src = append(src, "["+propLuaString(k)+"] = "+s)
		}
		return "{" + strings.Join(src, ", ") + "}", obj
	}
	s := g.pick([]string{"gold", "acme", "eu-west-1"})
	return propLuaString(s), s
}

func (g propGen) claim() propClaim { return propClaims[g.r.IntN(len(propClaims))] }

// ruleOp returns one statement of a rule and applies it to m.
func (g propGen) ruleOp(m *propModel) string {
	switch g.r.IntN(9) {
	case 0:
		names := g.scopeNames(4)
		m.kind, m.scopes = "table", names
		return "context.accessToken.scope = " + propLuaArray(names)
	case 1:
		names := g.scopeNames(4)
		s := strings.Join(names, g.pick([]string{" ", "  ", "\t", " \n "}))
		m.kind, m.scopes = "string", strings.Fields(s)
		return "context.accessToken.scope = " + propLuaString(s)
	case 2:
		m.kind, m.scopes = "nil", nil
		return "context.accessToken.scope = nil"
	case 3:
		name := g.scopeName()
		if m.kind == "table" {
			m.scopes = append(slices.Clip(m.scopes), name)
		}
		return `if type(context.accessToken.scope) == "table" then table.insert(context.accessToken.scope, ` +
			propLuaString(name) + `) end`
	case 4:
		if m.kind == "table" && len(m.scopes) > 0 {
			m.scopes = slices.Clone(m.scopes[1:])
		}
		return `if type(context.accessToken.scope) == "table" and #context.accessToken.scope > 0 then table.remove(context.accessToken.scope, 1) end`
	case 5:
		// scope written as a claim, as Auth0's examples sometimes do.
		if g.r.IntN(2) == 0 {
			names := g.scopeNames(3)
			m.kind, m.scopes = "table", names
			return `context.accessToken["scope"] = ` + propLuaArray(names)
		}
		s := strings.Join(g.scopeNames(3), " ")
		m.kind, m.scopes = "string", strings.Fields(s)
		return `context.accessToken["scope"] = ` + propLuaString(s)
	case 6:
		c := g.claim()
		delete(m.claims, c.name)
		return "context.accessToken[" + propLuaString(c.name) + "] = nil"
	}
	c := g.claim()
	src, v := g.value(0)
	m.claims[c.name] = v
	return "context.accessToken[" + propLuaString(c.name) + "] = " + src
}

// rule returns a rule of a few random statements.
func (g propGen) rule(m *propModel) string {
	var b strings.Builder
	b.WriteString("return function(user, context, callback)\n")
	for range g.r.IntN(6) {
		b.WriteString("  " + g.ruleOp(m) + "\n")
	}
	b.WriteString("  callback(nil, user, context)\nend\n")
	return b.String()
}

// hook returns a hook that calls back with a random access token.
func (g propGen) hook(m *propModel, requested []string) string {
	var entries []string
	switch g.r.IntN(4) {
	case 0:
		return "return function(client, scope, audience, context, cb) cb(nil, nil) end\n"
	case 1:
		names := g.scopeNames(4)
		m.scopes = names
		entries = append(entries, "scope = "+propLuaArray(names))
	case 2:
		// The requested scopes, as Auth0's hook examples pass them on.
		if requested != nil {
			m.scopes = requested
		}
		entries = append(entries, "scope = scope")
	}
	seen := map[string]bool{}
	for range g.r.IntN(4) {
		c := g.claim()
		if seen[c.name] {
			continue
		}
		seen[c.name] = true
		src, v := g.value(0)
		m.claims[c.name] = v
		entries = append(entries, "["+propLuaString(c.name)+"] = "+src)
	}
	return "return function(client, scope, audience, context, cb)\n  cb(nil, {" + strings.Join(entries, ", ") + "})\nend\n"
}

// action returns an action of a few random api calls.
func (g propGen) action(m *propModel) string {
	var b strings.Builder
	b.WriteString("return {\n  onExecuteCredentialsExchange = function(event, api)\n")
	for range g.r.IntN(5) {
		var call string
		switch g.r.IntN(5) {
		case 0:
			name := g.scopeName()
			if !slices.Contains(m.scopes, name) {
				m.scopes = append(slices.Clip(m.scopes), name)
			}
			call = "api.transaction.addTargetScope(" + propLuaString(name) + ")"
		case 1:
			name := g.scopeName()
			m.scopes = slices.DeleteFunc(slices.Clone(m.scopes), func(s string) bool { return s == name })
			call = "api.transaction.removeTargetScope(" + propLuaString(name) + ")"
		case 2:
			names := g.scopeNames(4)
			m.scopes = names
			call = "api.transaction.setTargetScopes(" + propLuaArray(names) + ")"
		case 3:
			m.scopes = []string{}
			call = "api.transaction.clearTargetScopes()"
		default:
			c := g.claim()
			if g.r.IntN(5) == 0 {
				delete(m.claims, c.name)
				call = "api.accessToken.setCustomClaim(" + propLuaString(c.name) + ", nil)"
			} else {
				src, v := g.value(0)
				m.claims[c.name] = v
				call = "api.accessToken.setCustomClaim(" + propLuaString(c.name) + ", " + src + ")"
			}
		}
		b.WriteString("    " + call + "\n")
	}
	b.WriteString("  end,\n}\n")
	return b.String()
}

// propCase is one generated input with the model's expectation.
type propCase struct {
	tx                    *Transaction
	narrow                bool
	ruleSrcs, hookSrcs    []string
	actionSrcs            []string
	wantScopes            []string
	wantDroppedScopes     []string
	wantClaims            map[string]any
	wantDroppedClaims     []string
	restrictedByHand      map[string]bool
	grantedSet, requested []string
}

func newPropCase(r *rand.Rand) *propCase {
	g := propGen{r}
	c := &propCase{narrow: r.IntN(2) == 0, restrictedByHand: map[string]bool{}}
	for _, pc := range propClaims {
		c.restrictedByHand[pc.name] = pc.restricted
	}

	// A grant of distinct, well-formed scopes, as an upstream token holds.
	for _, s := range propScopePool {
		if r.IntN(2) == 0 {
			c.grantedSet = append(c.grantedSet, s)
		}
	}
	r.Shuffle(len(c.grantedSet), func(i, j int) { c.grantedSet[i], c.grantedSet[j] = c.grantedSet[j], c.grantedSet[i] })
	if r.IntN(3) > 0 {
		c.requested = g.scopeNames(4)
		if len(c.requested) == 0 {
			c.requested = nil
		}
	}
	c.tx = &Transaction{
		ClientID: "m2m", GrantType: "client_credentials", Audience: "https://api.example.com",
		RequestedScopes: c.requested, GrantedScopes: c.grantedSet,
		Request: Request{Body: map[string]any{"grant_type": "client_credentials"}},
	}

	m := &propModel{kind: "table", claims: map[string]any{}}
	if c.narrow && len(c.requested) > 0 {
		m.scopes = propIntersect(c.requested, c.grantedSet)
	} else {
		m.scopes = c.grantedSet
	}
	for range r.IntN(4) {
		c.ruleSrcs = append(c.ruleSrcs, g.rule(m))
	}
	if r.IntN(3) == 0 {
		c.hookSrcs = append(c.hookSrcs, g.hook(m, c.requested))
	}
	for range r.IntN(3) {
		c.actionSrcs = append(c.actionSrcs, g.action(m))
	}

	// Auth0's guards, applied to the model: each scope once, in order,
	// those outside the grant dropped; restricted claims dropped.
	c.wantScopes = []string{}
	seen := map[string]bool{}
	for _, s := range m.scopes {
		switch {
		case seen[s]:
		case slices.Contains(c.grantedSet, s):
			c.wantScopes = append(c.wantScopes, s)
		default:
			c.wantDroppedScopes = append(c.wantDroppedScopes, s)
		}
		seen[s] = true
	}
	c.wantClaims = map[string]any{}
	for name, v := range m.claims {
		if c.restrictedByHand[name] {
			c.wantDroppedClaims = append(c.wantDroppedClaims, name)
			continue
		}
		c.wantClaims[name] = v
	}
	sort.Strings(c.wantDroppedClaims)
	return c
}

// pipeline compiles the case's programs into a new pipeline.
func (c *propCase) pipeline(t *testing.T) *Pipeline {
	t.Helper()
	compile := func(kind string, srcs []string) []*rules.Program {
		var progs []*rules.Program
		for i, src := range srcs {
			p, err := rules.Compile(fmt.Sprintf("%d0-%s.lua", i+1, kind), []byte(src))
			if err != nil {
				t.Fatalf("compile %s %d: %v\n%s", kind, i+1, err, src)
			}
			progs = append(progs, p)
		}
		return progs
	}
	return NewPipeline(Config{
		Rules: compile("rule", c.ruleSrcs), Hooks: compile("hook", c.hookSrcs),
		Actions: compile("action", c.actionSrcs), NarrowScopes: c.narrow,
		Logger: slog.New(slog.DiscardHandler),
	})
}

func (c *propCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "granted %q, requested %q, narrow %v\n", c.grantedSet, c.requested, c.narrow)
	for kind, srcs := range map[string][]string{"rule": c.ruleSrcs, "hook": c.hookSrcs, "action": c.actionSrcs} {
		for i, src := range srcs {
			fmt.Fprintf(&b, "--- %s %d\n%s", kind, i+1, src)
		}
	}
	return b.String()
}

// propSeeds is how many random cases the property tests run.
func propSeeds() int {
	if testing.Short() {
		return 50
	}
	return 400
}

func TestPipeline_PropertyGuards(t *testing.T) {
	const base = 0x5eed_0000
	for i := range propSeeds() {
		seed := uint64(base + i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := newPropCase(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d; the case:\n%s", seed, c)
				}
			})
			p := c.pipeline(t)
			res, err := p.Run(context.Background(), c.tx)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}

			// Invariants, whatever the programs did.
			for _, s := range res.Scopes {
				if !slices.Contains(c.grantedSet, s) {
					t.Errorf("scope %q is not in the grant %q", s, c.grantedSet)
				}
			}
			if compacted := slices.Compact(slices.Sorted(slices.Values(res.Scopes))); len(compacted) != len(res.Scopes) {
				t.Errorf("scopes %q hold a scope twice", res.Scopes)
			}
			for name := range res.Claims {
				if Restricted(name) || c.restrictedByHand[name] {
					t.Errorf("restricted claim %q in the result", name)
				}
			}

			// The model.
			if !slices.Equal(res.Scopes, c.wantScopes) {
				t.Errorf("scopes: got %q, want %q", res.Scopes, c.wantScopes)
			}
			if !slices.Equal(res.DroppedScopes, c.wantDroppedScopes) {
				t.Errorf("dropped scopes: got %q, want %q", res.DroppedScopes, c.wantDroppedScopes)
			}
			if !reflect.DeepEqual(res.Claims, c.wantClaims) && (len(res.Claims) > 0 || len(c.wantClaims) > 0) {
				t.Errorf("claims: got %#v, want %#v", res.Claims, c.wantClaims)
			}
			if !slices.Equal(res.DroppedClaims, c.wantDroppedClaims) {
				t.Errorf("dropped claims: got %q, want %q", res.DroppedClaims, c.wantDroppedClaims)
			}

			// Deterministic: again on the same pipeline, whose state has
			// run the programs once, and on a new one.
			for i, again := range []*Pipeline{p, c.pipeline(t)} {
				res2, err := again.Run(context.Background(), c.tx)
				if err != nil {
					t.Fatalf("run %d: %v", i+2, err)
				}
				if got, want := propComparable(res2), propComparable(res); !reflect.DeepEqual(got, want) {
					t.Errorf("run %d: got %#v, want the first run's %#v", i+2, got, want)
				}
			}
		})
	}
}

// TestPipeline_PropertyFailuresDeterministic: programs that fail (a scope of
// the wrong type, a denial, an error) fail the same way every time, and a
// failure never yields a result.
func TestPipeline_PropertyFailuresDeterministic(t *testing.T) {
	const base = 0xfa11_0000
	failures := []string{
		`context.accessToken.scope = 42`,
		`context.accessToken.scope = {1, 2}`,
		`context.accessToken.scope = {a = "read:a"}`,
		`context.accessToken[1] = "x"`,
		`context.accessToken["https://example.com/f"] = print`,
		`do return callback(UnauthorizedError("no")) end`,
		`error("boom")`,
		`error({code = 1})`,
		`context.accessToken = "x"`,
	}
	for i := range propSeeds() / 4 {
		seed := uint64(base + i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			c := newPropCase(r)
			// A failing statement in a last rule, after whatever came before.
			bad := failures[r.IntN(len(failures))]
			c.ruleSrcs = append(c.ruleSrcs,
				"return function(user, context, callback)\n  "+bad+"\n  callback(nil, user, context)\nend\n")
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d; the case:\n%s", seed, c)
				}
			})

			var first string
			for i, p := range []*Pipeline{c.pipeline(t), c.pipeline(t)} {
				for j := range 2 {
					res, err := p.Run(context.Background(), c.tx)
					if err == nil {
						t.Fatalf("pipeline %d run %d: got %+v, want an error", i+1, j+1, res)
					}
					if res != nil {
						t.Errorf("pipeline %d run %d: got a result beside the error %v", i+1, j+1, err)
					}
					msg := propAddresses.ReplaceAllString(err.Error(), "0x?")
					if first == "" {
						first = msg
					} else if msg != first {
						t.Errorf("pipeline %d run %d: got %q, want %q", i+1, j+1, msg, first)
					}
				}
			}
		})
	}
}

var propAddresses = regexp.MustCompile(`0x[0-9a-f]+`)

// propComparable is a result without its timings.
func propComparable(r *Result) Result {
	c := *r
	c.Timings = nil
	c.Claims = maps.Clone(r.Claims)
	if len(c.Claims) == 0 {
		c.Claims = nil
	}
	return c
}

func propIntersect(want, have []string) []string {
	out := []string{}
	for _, s := range want {
		if slices.Contains(have, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// propLuaString returns s as a Lua string literal.
func propLuaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func propLuaArray(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = propLuaString(n)
	}
	return "{" + strings.Join(quoted, ", ") + "}"
}
