package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
)

// The attacks below complete TestGateway_RefusesBadUpstreamTokens (in
// token_test.go), which has one case of each kind: alg none, HS256 keyed
// with the DER public key, a rogue key, the real kid on a rogue key, a JWKS
// with only the private key, expired and not yet valid by an hour, no exp,
// another issuer, crit naming exp, a 20 KiB token, "a.b.c". These are the
// variants it leaves out, and the kinds it does not have.

// jwtAttack is one forged or broken upstream token.
type jwtAttack struct {
	name string
	// jwks is what the upstream publishes; nil means the real key's
	// public half.
	jwks []jose.JSONWebKey
	// token builds the token the upstream answers with.
	token func(t *testing.T) string
}

// attackKeys are the keys the attacks play with.
type attackKeys struct {
	real, other, rogue jose.JSONWebKey // RSA; real signs the upstream's tokens
	ec, rogueEC        jose.JSONWebKey // P-256
	enc                jose.JSONWebKey // RSA, published for encryption only
}

func newAttackKeys(t *testing.T, real jose.JSONWebKey) attackKeys {
	k := attackKeys{real: real, other: testKey(t, "upstream-2"), rogue: testKey(t, "rogue")}
	k.ec = attackECKey(t, "upstream-ec")
	k.rogueEC = attackECKey(t, "rogue-ec")
	k.enc = testKey(t, "upstream-enc")
	k.enc.Use, k.enc.Algorithm = "enc", "RSA-OAEP-256"
	return k
}

func attackECKey(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

func TestGateway_RefusesJWTAttacks(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	k := newAttackKeys(t, up.key)
	claims := func() map[string]any { return up.nextClaims() }
	rs256 := func(kid string) map[string]any { return map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid} }
	pubDER, err := x509.MarshalPKIXPublicKey(k.real.Public().Key)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(k.real.Public())
	modulus := k.real.Public().Key.(*rsa.PublicKey).N.Bytes()

	// jku and x5u must never be followed: the attacker's server counts
	// what it is asked.
	var attackerHits atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		writeTestJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.rogue.Public()}})
	}))
	defer attacker.Close()

	tests := []jwtAttack{
		// alg none, in the spellings some libraries accept.
		{name: "alg None", token: func(t *testing.T) string {
			return attackUnsigned(map[string]any{"alg": "None", "typ": "JWT", "kid": "upstream-1"}, claims()) + "."
		}},
		{name: "alg NONE", token: func(t *testing.T) string {
			return attackUnsigned(map[string]any{"alg": "NONE", "typ": "JWT"}, claims()) + "."
		}},
		{name: "alg none keeping a real signature", token: func(t *testing.T) string {
			real := strings.Split(up.sign(t, claims()), ".")
			return attackUnsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": "upstream-1"}, claims()) + "." + real[2]
		}},
		{name: "alg empty", token: func(t *testing.T) string {
			return attackUnsigned(map[string]any{"alg": "", "typ": "JWT", "kid": "upstream-1"}, claims()) + "."
		}},
		{name: "no alg", token: func(t *testing.T) string {
			return attackUnsigned(map[string]any{"typ": "JWT", "kid": "upstream-1"}, claims()) + "."
		}},

		// HMAC keyed with what the upstream publishes (RFC 8725 §2.1).
		{name: "HS256 keyed with the PEM public key", token: func(t *testing.T) string {
			return attackHMAC(sha256.New, "HS256", "upstream-1", pubPEM, claims())
		}},
		{name: "HS256 keyed with the PEM public key, no kid", token: func(t *testing.T) string {
			return attackHMAC(sha256.New, "HS256", "", pubPEM, claims())
		}},
		{name: "HS256 keyed with the JWK", token: func(t *testing.T) string {
			return attackHMAC(sha256.New, "HS256", "upstream-1", pubJWK, claims())
		}},
		{name: "HS256 keyed with the modulus", token: func(t *testing.T) string {
			return attackHMAC(sha256.New, "HS256", "upstream-1", modulus, claims())
		}},
		{name: "HS384 keyed with the DER public key", token: func(t *testing.T) string {
			return attackHMAC(sha512.New384, "HS384", "upstream-1", pubDER, claims())
		}},
		{name: "HS512 keyed with the DER public key", token: func(t *testing.T) string {
			return attackHMAC(sha512.New, "HS512", "upstream-1", pubDER, claims())
		}},
		{name: "HS256 keyed with a secret the JWKS publishes",
			jwks: []jose.JSONWebKey{k.real.Public(), {Key: []byte("published-secret"), KeyID: "hs", Algorithm: "HS256", Use: "sig"}},
			token: func(t *testing.T) string {
				return attackHMAC(sha256.New, "HS256", "hs", []byte("published-secret"), claims())
			}},

		// Keys and kids.
		{name: "signed by one published key with the kid of another",
			jwks: []jose.JSONWebKey{k.real.Public(), k.other.Public()},
			token: func(t *testing.T) string {
				return attackSign(t, k.real, rs256("upstream-2"), attackJSON(claims()))
			}},
		{name: "no kid, two published keys, signed by a rogue key",
			jwks: []jose.JSONWebKey{k.real.Public(), k.other.Public()},
			token: func(t *testing.T) string {
				return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT"}, attackJSON(claims()))
			}},
		{name: "no kid, one published key, signed by a rogue key", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT"}, attackJSON(claims()))
		}},
		{name: "signed by a key published for encryption",
			jwks: []jose.JSONWebKey{k.real.Public(), k.enc.Public()},
			token: func(t *testing.T) string {
				return attackSign(t, k.enc, rs256("upstream-enc"), attackJSON(claims()))
			}},
		{name: "ES256 under the kid of the RSA key", token: func(t *testing.T) string {
			return attackSign(t, k.rogueEC, map[string]any{"alg": "ES256", "typ": "JWT", "kid": "upstream-1"}, attackJSON(claims()))
		}},
		{name: "RS256 under the kid of an EC key",
			jwks: []jose.JSONWebKey{k.real.Public(), k.ec.Public()},
			token: func(t *testing.T) string {
				return attackSign(t, k.rogue, rs256("upstream-ec"), attackJSON(claims()))
			}},
		// CVE-2022-21449: an ECDSA signature of zeros.
		{name: "ES256 signature of zeros",
			jwks: []jose.JSONWebKey{k.real.Public(), k.ec.Public()},
			token: func(t *testing.T) string {
				return attackUnsigned(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "upstream-ec"}, claims()) + "." +
					base64.RawURLEncoding.EncodeToString(make([]byte, 64))
			}},
		{name: "PS256 by a rogue key under the real kid", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "PS256", "typ": "JWT", "kid": "upstream-1"}, attackJSON(claims()))
		}},

		// Tampering with a real token.
		{name: "payload changed after signing", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			forged := claims()
			forged["scope"] = "read:a write:a admin superuser"
			forged["exp"] = time.Now().Add(10 * 365 * 24 * time.Hour).Unix()
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(attackJSON(forged)) + "." + parts[2]
		}},
		{name: "header changed after signing", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			header := base64.RawURLEncoding.EncodeToString(attackJSON(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "upstream-1"}))
			return header + "." + parts[1] + "." + parts[2]
		}},
		{name: "signature stripped", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			return parts[0] + "." + parts[1] + "."
		}},
		{name: "signature of another token", token: func(t *testing.T) string {
			a := strings.Split(up.sign(t, claims()), ".")
			other := claims()
			other["scope"] = "admin"
			b := strings.Split(up.sign(t, other), ".")
			return b[0] + "." + b[1] + "." + a[2]
		}},

		// JOSE JSON serializations of tokens the upstream's key really
		// signs: a JWT is compact only (RFC 7519 §1), and such a token is
		// no opaque token either, since an API that verifies opaque tokens
		// against the upstream could accept it without the rules.
		{name: "flattened JSON serialization", token: func(t *testing.T) string {
			return string(attackJSONSerialized(t, up, claims(), nil))
		}},
		{name: "flattened JSON serialization with two dots", token: func(t *testing.T) string {
			return string(attackJSONSerialized(t, up, claims(), map[string]any{"note": "a.b.c"}))
		}},
		{name: "flattened JSON serialization after white space", token: func(t *testing.T) string {
			return " \n" + string(attackJSONSerialized(t, up, claims(), nil))
		}},
		{name: "general JSON serialization", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			return string(attackJSON(map[string]any{
				"payload":    parts[1],
				"signatures": []map[string]any{{"protected": parts[0], "signature": parts[2]}},
			}))
		}},
		{name: "general JSON serialization, second signature forged", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			forged := claims()
			forged["scope"] = "admin superuser"
			return string(attackJSON(map[string]any{
				"payload": base64.RawURLEncoding.EncodeToString(attackJSON(forged)),
				"signatures": []map[string]any{
					{"protected": parts[0], "signature": parts[2]},
					{"protected": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), "signature": ""},
				},
			}))
		}},
		{name: "JWE JSON serialization", token: func(t *testing.T) string {
			return attackJWEJSON(t, k.real, attackJSON(claims()))
		}},

		// Keys the token brings along: never trusted, never fetched.
		{name: "jwk header with the signer's key", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT", "jwk": k.rogue.Public()}, attackJSON(claims()))
		}},
		{name: "jwk header under the real kid", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "upstream-1", "jwk": k.rogue.Public()}, attackJSON(claims()))
		}},
		{name: "jku header naming the attacker's JWKS", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rogue", "jku": attacker.URL + "/jwks.json"}, attackJSON(claims()))
		}},
		{name: "x5u header naming the attacker's certificate", token: func(t *testing.T) string {
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rogue", "x5u": attacker.URL + "/cert.pem"}, attackJSON(claims()))
		}},
		{name: "x5c header with the signer's certificate", token: func(t *testing.T) string {
			cert := attackCertificate(t, k.rogue)
			return attackSign(t, k.rogue, map[string]any{"alg": "RS256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(cert)}}, attackJSON(claims()))
		}},

		// Private keys in the JWKS are skipped, whatever else is there.
		{name: "JWKS publishing a rogue private key beside the real public one",
			jwks: []jose.JSONWebKey{k.real.Public(), k.rogue},
			token: func(t *testing.T) string {
				return attackSign(t, k.rogue, rs256("rogue"), attackJSON(claims()))
			}},
		{name: "JWKS publishing an EC private key",
			jwks: []jose.JSONWebKey{k.ec},
			token: func(t *testing.T) string {
				return attackSign(t, k.ec, map[string]any{"alg": "ES256", "typ": "JWT", "kid": "upstream-ec"}, attackJSON(claims()))
			}},

		// Time and issuer, at and around the edges.
		{name: "expired just past the leeway", token: func(t *testing.T) string {
			c := claims()
			c["exp"] = time.Now().Add(-clockLeeway - 10*time.Second).Unix()
			return up.sign(t, c)
		}},
		{name: "nbf just past the leeway", token: func(t *testing.T) string {
			c := claims()
			c["nbf"] = time.Now().Add(clockLeeway + 10*time.Second).Unix()
			return up.sign(t, c)
		}},
		{name: "no iss", token: func(t *testing.T) string {
			c := claims()
			delete(c, "iss")
			return up.sign(t, c)
		}},
		{name: "iss not a string", token: func(t *testing.T) string {
			c := claims()
			c["iss"] = []string{up.URL + "/"}
			return up.sign(t, c)
		}},
		{name: "iss under a look-alike host", token: func(t *testing.T) string {
			c := claims()
			c["iss"] = up.URL + ".evil.example/"
			return up.sign(t, c)
		}},
		{name: "iss with another scheme", token: func(t *testing.T) string {
			c := claims()
			c["iss"] = "https" + strings.TrimPrefix(up.URL, "http") + "/"
			return up.sign(t, c)
		}},
		{name: "iss with a path appended", token: func(t *testing.T) string {
			c := claims()
			c["iss"] = up.URL + "/tenant-b/"
			return up.sign(t, c)
		}},

		// crit (RFC 7515 §4.1.11): the gateway re-signs the claims without
		// the header, so no extension the upstream marks critical can hold.
		{name: "crit naming an unknown extension", token: func(t *testing.T) string {
			h := rs256("upstream-1")
			h["crit"], h["https://example.com/ext"] = []string{"https://example.com/ext"}, true
			return attackSign(t, k.real, h, attackJSON(claims()))
		}},
		{name: "crit naming b64", token: func(t *testing.T) string {
			h := rs256("upstream-1")
			h["crit"], h["b64"] = []string{"b64"}, true
			return attackSign(t, k.real, h, attackJSON(claims()))
		}},
		{name: "crit empty", token: func(t *testing.T) string {
			h := rs256("upstream-1")
			h["crit"] = []string{}
			return attackSign(t, k.real, h, attackJSON(claims()))
		}},

		// Sizes and payloads.
		{name: "just over 16 KiB", token: func(t *testing.T) string {
			return attackSized(t, k.real, claims(), maxTokenSize, true)
		}},
		{name: "payload not JSON", token: func(t *testing.T) string {
			return attackSign(t, k.real, rs256("upstream-1"), []byte("sub=m2m@clients; scope=admin"))
		}},
		{name: "payload a JSON array", token: func(t *testing.T) string {
			return attackSign(t, k.real, rs256("upstream-1"), attackJSON([]any{claims()}))
		}},
		{name: "payload JSON null", token: func(t *testing.T) string {
			return attackSign(t, k.real, rs256("upstream-1"), []byte("null"))
		}},
		{name: "payload with a second object after it", token: func(t *testing.T) string {
			c := claims()
			evil := claims()
			evil["iss"] = "https://evil.example/"
			return attackSign(t, k.real, rs256("upstream-1"), append(attackJSON(c), attackJSON(evil)...))
		}},
		{name: "payload not base64url", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			return parts[0] + ".!!" + parts[1][2:] + "." + parts[2]
		}},
		{name: "header not JSON", token: func(t *testing.T) string {
			parts := strings.Split(up.sign(t, claims()), ".")
			return base64.RawURLEncoding.EncodeToString([]byte("RS256")) + "." + parts[1] + "." + parts[2]
		}},
	}

	// exp, nbf and iat are NumericDates (RFC 7519 §2): any other value is
	// refused, never read as absent.
	for _, name := range []string{"exp", "nbf", "iat"} {
		for _, raw := range []string{`"123"`, `"1e3"`, `"NaN"`, `"Infinity"`, `true`, `null`, `{}`,
			`{"$date":1900000000}`, `[]`, `[1900000000]`, `1e400`, `-1e400`, `-1`, `1e19`, `253402300800`} {
			tests = append(tests, jwtAttack{name: name + " " + raw, token: func(t *testing.T) string {
				return up.sign(t, attackJSONWithRaw(claims(), name, raw))
			}})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.set(func(f *fakeIssuer) { f.jwks = tt.jwks })
			defer up.set(func(f *fakeIssuer) { f.jwks = nil })
			token := tt.token(t)
			attackRefused(t, up, token)
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's server was asked %d times for keys a token named, want 0", n)
	}
}

// TestGateway_TokenSizeLimit: the 16 KiB limit is the only thing that
// refuses the largest tokens: one at the limit is served, one past it is
// not, whatever its signature.
func TestGateway_TokenSizeLimit(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	for _, over := range []bool{false, true} {
		token := attackSized(t, up.key, up.nextClaims(), maxTokenSize, over)
		if !over {
			gw := attackGateway(t, up, token)
			status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm(""))
			if status != 200 {
				t.Errorf("token of %d bytes: got %d %v, want 200", len(token), status, answer)
			}
			continue
		}
		attackRefused(t, up, token)
	}
}

// TestGateway_DuplicateAccessToken: an answer that names access_token
// twice is read the way the gateway writes it back, so that the token the
// client gets is the one that was verified and re-signed.
func TestGateway_DuplicateAccessToken(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	real := up.sign(t, up.nextClaims())
	forged := attackUnsigned(map[string]any{"alg": "none", "typ": "JWT"}, up.nextClaims()) + "."

	for _, tt := range []struct {
		name   string
		answer string
		ok     bool
	}{
		{"forged first", `{"access_token":"` + forged + `","access_token":"` + real + `","token_type":"Bearer"}`, true},
		{"forged last", `{"access_token":"` + real + `","access_token":"` + forged + `","token_type":"Bearer"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up.set(func(f *fakeIssuer) {
				f.answer = func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, tt.answer)
				}
			})
			gw := newTestGateway(t, up.URL, compat.Config{})
			body := attackPost(t, gw)
			for _, tok := range []string{real, forged} {
				if strings.Contains(body, tok) {
					t.Errorf("answer carries an upstream token: %s", body)
				}
			}
			if got := strings.Count(body, `"access_token"`); got > 1 {
				t.Errorf("answer names access_token %d times: %s", got, body)
			}
			if !tt.ok {
				attackCheckRefusal(t, body)
				return
			}
			var answer map[string]any
			if err := json.Unmarshal([]byte(body), &answer); err != nil {
				t.Fatal(err)
			}
			tok, _ := answer["access_token"].(string)
			if tok == "" {
				t.Fatalf("answer: got %s, want a token", body)
			}
			verifyThroughGateway(t, gw.URL, tok)
		})
	}
}

// TestGateway_NonCompactTokensNeverResigned: a token that is not in three
// dot-separated parts is no compact JWS (RFC 7515 §7.1) the gateway can
// verify. Such a token, a compact JWE above all (as Auth0's opaque tokens
// are, alg "dir"), passes on unchanged as an opaque one (README, "What the
// client gets back"; rewriteTokenAnswer) and is never signed. A JSON
// serialization is refused instead (TestGateway_RefusesJWTAttacks).
func TestGateway_NonCompactTokensNeverResigned(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	jws := strings.Split(up.sign(t, up.nextClaims()), ".")

	tests := []struct{ name, token string }{
		{"JWE compact", attackJWE(t, up.key, attackJSON(up.nextClaims()))},
		{"JWE compact, alg dir as Auth0's", attackDirJWE(t, attackJSON(up.nextClaims()))},
		{"four parts", strings.Join(jws, ".") + "." + jws[2]},
		{"two tokens joined", strings.Join(jws, ".") + "." + strings.Join(jws, ".")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := attackGateway(t, up, tt.token)
			body := attackPost(t, gw)
			var answer map[string]any
			if err := json.Unmarshal([]byte(body), &answer); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, body)
			}
			if tok := answer["access_token"]; tok != tt.token {
				t.Errorf("access_token: got %.60v..., want the upstream's unchanged", tok)
			}
			if got := attackOutcome(t, gw); got != outcomeOpaque {
				t.Errorf("outcome: got %q, want %q", got, outcomeOpaque)
			}
		})
	}
}

// TestVerifier_CompactOnly: Verify reads the compact serialization only
// (RFC 7519 §1). The same signed token in a JSON serialization is refused,
// whatever dots its members hold, so that no caller of Verify depends on
// rewriteTokenAnswer's own check.
func TestVerifier_CompactOnly(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	v, _ := newTestVerifier(t, up, up.URL+"/")
	claims := up.nextClaims()
	if _, _, err := v.Verify(t.Context(), up.sign(t, claims)); err != nil {
		t.Fatalf("compact token: %v", err)
	}

	for _, header := range []map[string]any{nil, {"note": "a.b.c"}} {
		token := string(attackJSONSerialized(t, up, claims, header))
		if _, got, err := v.Verify(t.Context(), token); err == nil {
			t.Errorf("JSON serialization %.80s...: verified %v, want an error", token, got)
		}
	}
}

// attackRefused makes the upstream answer with token, sends a token
// request to a fresh gateway, and checks that it is refused: 502
// server_error, no token, counted as a verification failure.
func attackRefused(t *testing.T, up *fakeIssuer, token string) {
	t.Helper()
	gw := attackGateway(t, up, token)
	body := attackPost(t, gw)
	attackCheckRefusal(t, body)
	if strings.Contains(body, token) {
		t.Errorf("answer carries the upstream token")
	}
	if got := attackOutcome(t, gw); got != outcomeVerification {
		t.Errorf("outcome: got %q, want %q", got, outcomeVerification)
	}
}

// attackGateway returns a new gateway, with no JWKS cached from another
// case, in front of up answering with token.
func attackGateway(t *testing.T, up *fakeIssuer, token string) *testGateway {
	t.Helper()
	up.set(func(f *fakeIssuer) {
		f.answer = func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 86400})
		}
	})
	t.Cleanup(func() { up.set(func(f *fakeIssuer) { f.answer = nil }) })
	return newTestGateway(t, up.URL, compat.Config{NarrowScopes: true})
}

func attackPost(t *testing.T, gw *testGateway) string {
	t.Helper()
	resp, err := http.Post(gw.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(ccForm("read:a").Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 && resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status: got %d, want 502 (or 200 for a token served): %s", resp.StatusCode, body)
	}
	return string(body)
}

// attackCheckRefusal checks a refusal's body: server_error and no token.
func attackCheckRefusal(t *testing.T, body string) {
	t.Helper()
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, body)
	}
	if answer["error"] != "server_error" {
		t.Errorf("answer: got %s, want 502 server_error", body)
	}
	if _, ok := answer["access_token"]; ok || strings.Contains(body, "eyJ") {
		t.Errorf("refusal carries a token: %s", body)
	}
}

// attackOutcome returns the outcome the gateway counted for its one token
// request.
func attackOutcome(t *testing.T, gw *testGateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		rest, ok := strings.CutPrefix(line, `rulesgate_token_requests_total{outcome="`)
		if !ok {
			continue
		}
		if outcome, count, ok := strings.Cut(rest, `"} `); ok && count != "0" {
			return outcome
		}
	}
	return ""
}

func attackJSON(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

// attackJSONWithRaw returns claims with name set to raw, JSON written as
// it is: null (which the fake issuer would drop), 1e400, and the like.
func attackJSONWithRaw(claims map[string]any, name, raw string) map[string]any {
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		out[k] = v
	}
	out[name] = json.RawMessage(raw)
	return out
}

// attackJSONSerialized returns claims signed by the upstream's key in the
// flattened JWS JSON serialization (RFC 7515 §7.2.2), with header as its
// unprotected header when not nil.
func attackJSONSerialized(t *testing.T, up *fakeIssuer, claims, header map[string]any) []byte {
	t.Helper()
	parts := strings.Split(up.sign(t, claims), ".")
	jws := map[string]any{"protected": parts[0], "payload": parts[1], "signature": parts[2]}
	if header != nil {
		jws["header"] = header
	}
	return attackJSON(jws)
}

// attackUnsigned returns the first two parts of a compact JWS.
func attackUnsigned(header map[string]any, claims map[string]any) string {
	return base64.RawURLEncoding.EncodeToString(attackJSON(header)) + "." +
		base64.RawURLEncoding.EncodeToString(attackJSON(claims))
}

// attackHMAC returns a token MACed with secret.
func attackHMAC(h func() hash.Hash, alg, kid string, secret []byte, claims map[string]any) string {
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	in := attackUnsigned(header, claims)
	mac := hmac.New(h, secret)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// attackSign signs payload under header, written as given, with key's
// private half: RS256, PS256 or ES256, after the header's alg.
func attackSign(t *testing.T, key jose.JSONWebKey, header map[string]any, payload []byte) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString(attackJSON(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	switch priv := key.Key.(type) {
	case *rsa.PrivateKey:
		if header["alg"] == "PS256" {
			sig, err = rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		}
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, priv, digest[:]); err == nil {
			sig = make([]byte, 64) // RFC 7518 §3.4: R and S, 32 bytes each
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	default:
		t.Fatalf("attackSign: %T", key.Key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// attackSized returns a token of claims signed by key, padded to the
// largest size within limit, or with over to the smallest size past it.
func attackSized(t *testing.T, key jose.JSONWebKey, claims map[string]any, limit int, over bool) string {
	t.Helper()
	header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": key.KeyID}
	claims["padding"] = ""
	base := len(attackSign(t, key, header, attackJSON(claims)))
	last := ""
	for pad := max((limit-base)*3/4-8, 0); pad < limit; pad++ {
		claims["padding"] = strings.Repeat("x", pad)
		token := attackSign(t, key, header, attackJSON(claims))
		if len(token) > limit {
			if over {
				if len(token) > limit+4 {
					t.Fatalf("attackSized: %d bytes, want just over %d", len(token), limit)
				}
				return token
			}
			if len(last) < limit-4 {
				t.Fatalf("attackSized: %d bytes, want just within %d", len(last), limit)
			}
			return last
		}
		last = token
	}
	t.Fatalf("attackSized: no padding goes past %d bytes", limit)
	return ""
}

// attackCertificate returns a self-signed certificate for key.
func attackCertificate(t *testing.T, key jose.JSONWebKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "upstream.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	priv := key.Key.(*rsa.PrivateKey)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// attackJWE returns payload encrypted to key, in compact serialization.
func attackJWE(t *testing.T, key jose.JSONWebKey, payload []byte) string {
	t.Helper()
	out, err := attackEncrypt(t, jose.RSA_OAEP_256, &key.Key.(*rsa.PrivateKey).PublicKey, payload).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// attackJWEJSON returns payload encrypted to key, in the JWE JSON
// serialization (RFC 7516 §7.2).
func attackJWEJSON(t *testing.T, key jose.JSONWebKey, payload []byte) string {
	t.Helper()
	return attackEncrypt(t, jose.RSA_OAEP_256, &key.Key.(*rsa.PrivateKey).PublicKey, payload).FullSerialize()
}

// attackDirJWE returns payload encrypted with a shared key, alg "dir", in
// compact serialization: the shape of Auth0's opaque access tokens.
func attackDirJWE(t *testing.T, payload []byte) string {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	out, err := attackEncrypt(t, jose.DIRECT, key, payload).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func attackEncrypt(t *testing.T, alg jose.KeyAlgorithm, key any, payload []byte) *jose.JSONWebEncryption {
	t.Helper()
	enc := jose.A128GCM
	if alg == jose.DIRECT {
		enc = jose.A256GCM
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(payload)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}
