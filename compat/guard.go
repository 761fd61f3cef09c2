package compat

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MaxClaimsSize is the most custom claims may weigh together, encoded as
// JSON. Auth0 limits custom claims to 100 KB.
const MaxClaimsSize = 100 * 1024

// ErrClaimsTooLarge is returned when the custom claims exceed MaxClaimsSize.
var ErrClaimsTooLarge = errors.New("custom claims exceed 100 KB")

// restricted lists the claims extensions cannot set: the registered JWT
// claims and Auth0's restricted list, plus the scope claims, which
// extensions change only through the scope.
var restricted = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`acr act active amr at_hash ath attest aud
		auth_time authorization_details azp c_hash client_id cnf cty dest
		entitlements events exp groups gty htm htu iat internalService iss jcard
		jku jti jwe jwk kid may_act mky nbf nonce object_id org_id org_name orig
		origid permissions roles rph s_hash sid sub sub_jwk toe txn typ uuid vot
		vtm x5t#S256 scope scp`) {
		restricted[c] = true
	}
}

// reservedDomains are the namespaces Auth0 keeps for itself.
var reservedDomains = []string{"auth0.com", "webtask.io", "webtask.run"}

// Restricted reports whether an extension may not set claim name: it is on
// Auth0's restricted list (sip_* included) or in a reserved namespace.
func Restricted(name string) bool {
	if restricted[name] || strings.HasPrefix(name, "sip_") {
		return true
	}
	// Most names mention no reserved namespace at all.
	if !containsFold(name, "auth0") && !containsFold(name, "webtask") {
		return false
	}
	lower := strings.ToLower(strings.TrimSpace(name))
	if strings.HasPrefix(lower, "urn:auth0") {
		return true
	}
	host := namespaceHost(lower)
	for _, d := range reservedDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII word, in any
// case, without allocating.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for j < len(word) && (s[i+j]|0x20) == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// namespaceHost returns the host a claim name is namespaced under:
// "https://x.example.com:8443/claim" and "x.example.com/claim" both give
// "x.example.com". It reads the name as text rather than as a URL, so that
// a name no URL parser accepts ("https://x.auth0.com/100%") still has its
// host found.
func namespaceHost(name string) string {
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	} else if i := strings.Index(name, ":/"); i >= 0 {
		name = name[i+2:]
	}
	name = strings.TrimLeft(name, "/\\")
	if i := strings.IndexAny(name, "/\\?#"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "]") {
		name = name[:i]
	}
	return strings.TrimSuffix(name, ".")
}

// Bounds of the dropped scopes a result lists, for the log.
const (
	maxDropped    = 100
	maxDroppedLen = 256
)

// guard applies Auth0's rules to what the extensions left: scopes cut to
// the grant, restricted claims dropped, custom claims bounded in size.
func guard(granted, scopes []string, claims map[string]any) (*Result, error) {
	res := &Result{Scopes: []string{}, Claims: claims}

	// A scope longer than every granted one is dropped unread: a rule can
	// hand over many long strings, and hashing each would outlast its
	// deadline. Only what is kept, at most the grant, is deduplicated.
	longest := 0
	for _, g := range granted {
		longest = max(longest, len(g))
	}
	grant, seen, dropped := lookup(granted), firstSeen(len(granted)), firstSeen(maxDropped)
	for _, s := range scopes {
		switch {
		case len(s) <= longest && grant(s):
			if !seen(res.Scopes, s) {
				res.Scopes = append(res.Scopes, s)
			}
		case len(res.DroppedScopes) < maxDropped:
			s = s[:min(len(s), maxDroppedLen)]
			if !dropped(res.DroppedScopes, s) {
				res.DroppedScopes = append(res.DroppedScopes, s)
			}
		}
	}

	for name := range claims {
		if Restricted(name) {
			res.DroppedClaims = append(res.DroppedClaims, name)
			delete(claims, name)
		}
	}
	sort.Strings(res.DroppedClaims)
	if len(claims) > 0 {
		size, err := jsonSize(claims, MaxClaimsSize)
		if err != nil {
			return nil, fmt.Errorf("measure custom claims: %w", err)
		}
		if size > MaxClaimsSize {
			return nil, ErrClaimsTooLarge
		}
	}
	return res, nil
}

// intersect returns the entries of want that are in have, in want's order.
func intersect(want, have []string) []string {
	in := lookup(have)
	out := make([]string, 0, len(want))
	for _, s := range want {
		if in(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// firstSeen returns a test of whether s is among the earlier entries of a
// list of n: a linear search for short lists, a map for long ones.
func firstSeen(n int) func(earlier []string, s string) bool {
	if n <= 32 {
		return func(earlier []string, s string) bool { return slices.Contains(earlier, s) }
	}
	set := make(map[string]bool, n)
	return func(_ []string, s string) bool {
		dup := set[s]
		set[s] = true
		return dup
	}
}

// lookup returns a membership test for list: a linear search for the short
// lists scopes usually are, a map for long ones.
func lookup(list []string) func(string) bool {
	if len(list) <= 32 {
		return func(s string) bool { return slices.Contains(list, s) }
	}
	set := make(map[string]bool, len(list))
	for _, s := range list {
		set[s] = true
	}
	return func(s string) bool { return set[s] }
}
