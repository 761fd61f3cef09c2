package gateway

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The fuzzed upstream signs with fixed keys, kept with their private halves
// in testdata/fuzz-upstream-keys.json, and its verifier runs on a fixed
// clock: the seed tokens under testdata/fuzz/FuzzVerifier_Verify stay
// valid, so that the fuzzer starts from tokens that verify and mutates
// them. The keys are test keys, used nowhere else.
var fuzzNow = time.Unix(1_900_000_000, 0)

const fuzzIssuer = "https://issuer.example/"

// fuzzValidClaims are the payloads signed by the upstream's keys that
// verify at fuzzNow: the only claims a successful Verify may return.
var fuzzValidClaims = []string{
	`{"aud":"https://api.example.com","azp":"m2m","exp":1900003600,"gty":"client-credentials","iat":1899999940,"iss":"https://issuer.example/","scope":"read:a write:a","sub":"m2m@clients"}`,
	`{"aud":["https://api.example.com","https://issuer.example/userinfo"],"exp":1900003600,"iat":1899999940,"iss":"https://issuer.example","nbf":1899999990,"scp":["read:a","write:a"],"sub":"user|42"}`,
}

// fuzzRefusedClaims are signed by the upstream's keys but must be refused:
// expired, from another issuer, not valid yet, without exp.
var fuzzRefusedClaims = []string{
	`{"exp":1899999000,"iat":1899990000,"iss":"https://issuer.example/","scope":"read:a","sub":"expired"}`,
	`{"exp":1900003600,"iat":1899999940,"iss":"https://other.example/","scope":"read:a","sub":"elsewhere"}`,
	`{"exp":1900003600,"iss":"https://issuer.example/","nbf":1900000600,"scope":"read:a","sub":"early"}`,
	`{"iat":1899999940,"iss":"https://issuer.example/","scope":"read:a","sub":"forever"}`,
}

// fuzzForgedClaims is what an attacker signs with a key that is not one of
// the upstream's signing keys.
const fuzzForgedClaims = `{"exp":1900003600,"iss":"https://issuer.example/","scope":"admin","sub":"attacker"}`

// fuzzKeys reads the fuzzed upstream's keys, by kid: fuzz-rsa (RS256),
// fuzz-ec (ES256) and fuzz-ed (EdDSA) sign its tokens; fuzz-leaked (ES256)
// and fuzz-hmac (HS256) are keys it publishes by mistake, whole, and the
// verifier must skip.
func fuzzKeys(t testing.TB) map[string]jose.JSONWebKey {
	t.Helper()
	raw, err := os.ReadFile("testdata/fuzz-upstream-keys.json")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		keys[k.KeyID] = k
	}
	return keys
}

// fuzzJWKS is the JWKS the fuzzed upstream publishes: the public halves of
// its signing keys, and its two mistakes whole.
func fuzzJWKS(t testing.TB, keys map[string]jose.JSONWebKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, kid := range []string{"fuzz-rsa", "fuzz-ec", "fuzz-ed"} {
		k := keys[kid]
		set.Keys = append(set.Keys, k.Public())
	}
	set.Keys = append(set.Keys, keys["fuzz-leaked"], keys["fuzz-hmac"])
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newFuzzVerifier returns a verifier of fuzzIssuer's tokens on the clock
// fuzzNow, whose JWKS, jwks, an httptest server publishes, and the count
// of the fetches the server answered.
func newFuzzVerifier(f *testing.F, jwks []byte) (*Verifier, *atomic.Int32) {
	fetches := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	f.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/.well-known/jwks.json")
	if err != nil {
		f.Fatal(err)
	}
	v := NewVerifier(srv.Client(), u, fuzzIssuer, discardLogger(), nil)
	v.now = func() time.Time { return fuzzNow }
	return v, fetches
}

// signFuzzToken signs payload with key in the JWS Compact Serialization;
// key's kid, if any, goes in the header.
func signFuzzToken(t testing.TB, key any, alg jose.SignatureAlgorithm, payload string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzVerifier_Verify verifies hostile tokens against an upstream whose
// JWKS an httptest server publishes. Verify must never panic, and never
// accept a token the upstream's keys did not sign: a success returns one of
// fuzzValidClaims exactly, so a mutated token verifies only if its signing
// input is unchanged. Tokens signed by the upstream's keys but expired,
// from another issuer or not valid yet are refused too. However many
// unknown kids come, the clock does not move, so the JWKS is fetched once.
func FuzzVerifier_Verify(f *testing.F) {
	keys := fuzzKeys(f)
	v, fetches := newFuzzVerifier(f, fuzzJWKS(f, keys))

	valid := make([]Claims, len(fuzzValidClaims))
	for i, p := range fuzzValidClaims {
		var err error
		if valid[i], err = decodeClaims([]byte(p)); err != nil {
			f.Fatal(err)
		}
	}

	// Freshly signed tokens, besides the committed ones: those with valid
	// claims must verify, or the property below would hold for nothing.
	for _, s := range []struct {
		kid string
		alg jose.SignatureAlgorithm
	}{{"fuzz-rsa", jose.RS256}, {"fuzz-ec", jose.ES256}, {"fuzz-ed", jose.EdDSA}} {
		for _, p := range fuzzValidClaims {
			token := signFuzzToken(f, keys[s.kid], s.alg, p)
			if _, _, err := v.Verify(f.Context(), token); err != nil {
				f.Fatalf("a valid %s token is refused: %v", s.alg, err)
			}
			f.Add(token)
		}
		for _, p := range fuzzRefusedClaims {
			f.Add(signFuzzToken(f, keys[s.kid], s.alg, p))
		}
	}
	f.Add(signFuzzToken(f, keys["fuzz-leaked"], jose.ES256, fuzzForgedClaims))
	f.Add(signFuzzToken(f, keys["fuzz-hmac"], jose.HS256, fuzzForgedClaims))

	f.Fuzz(func(t *testing.T, token string) {
		header, claims, err := v.Verify(t.Context(), token)
		if err != nil {
			if claims != nil {
				t.Errorf("claims with an error: %v", err)
			}
			return
		}
		if !slices.ContainsFunc(valid, func(c Claims) bool { return maps.Equal(c, claims) }) {
			payload, _ := claims.MarshalJSON()
			t.Fatalf("verified claims the upstream never signed: %s (header %+v)", payload, header)
		}
		if !slices.Contains(allowedAlgorithms, jose.SignatureAlgorithm(header.Algorithm)) {
			t.Errorf("verified with algorithm %q", header.Algorithm)
		}
		if n := fetches.Load(); n != 1 {
			t.Errorf("JWKS fetched %d times on a still clock, want 1", n)
		}
	})
}

// FuzzVerifier_Claims verifies tokens the upstream's key really signs, over
// hostile payloads: what a faulty or compromised upstream may send. Verify
// must never panic, and accepts a token only when its claims are a JSON
// object whose exp is a number not past (RFC 7519 §4.1.4), whose nbf, when
// a number, is not ahead (§4.1.5), and whose iss is the upstream's, each
// within the clock leeway; the claims it returns are the ones signed.
func FuzzVerifier_Claims(f *testing.F) {
	keys := fuzzKeys(f)
	v, _ := newFuzzVerifier(f, fuzzJWKS(f, keys))

	for _, p := range append(slices.Clone(fuzzValidClaims), fuzzRefusedClaims...) {
		f.Add([]byte(p))
	}
	for _, s := range []string{
		`{"exp":1900000029.5,"iss":"https://issuer.example/"}`,
		`{"exp":1900003600,"iss":"https://issuer.example/","nbf":1900000030}`,
		`{"exp":1.9000036e9,"iss":"https://issuer.example/","nbf":1.9000006e9}`,
		`{"exp":"1900003600","iss":"https://issuer.example/"}`,
		`{"exp":1900003600,"iss":"https:\/\/issuer.example\/","nbf":"later"}`,
		`{"exp":1e400,"iss":"https://issuer.example/"}`,
		`{"exp":1,"exp":1900003600,"iss":"https://other.example/","iss":"https://issuer.example/"}`,
		`[1900003600]`, `"claims"`, `null`, `{"exp":1900003600,`,
	} {
		f.Add([]byte(s))
	}

	signer := keys["fuzz-ed"]
	now := new(big.Float).SetInt64(fuzzNow.Unix())
	leeway := new(big.Float).SetFloat64((clockLeeway + time.Second).Seconds())
	f.Fuzz(func(t *testing.T, payload []byte) {
		token := signFuzzToken(t, signer, jose.EdDSA, string(payload))
		_, claims, err := v.Verify(t.Context(), token)
		if err != nil {
			return
		}
		signed, err := decodeClaims(payload)
		if err != nil || !maps.Equal(claims, signed) {
			t.Fatalf("verified claims %v, signed %q", claims, payload)
		}

		// NumericDate: a JSON number of seconds (RFC 7519 §2), read here
		// whatever its size.
		date := func(name string) (*big.Float, bool) {
			raw := claims[name]
			if raw == "" || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
				return nil, false
			}
			d, _, err := big.ParseFloat(raw, 10, 128, big.ToNearestEven)
			return d, err == nil
		}
		exp, ok := date("exp")
		if !ok {
			t.Fatalf("verified without a numeric exp: %s", payload)
		}
		if new(big.Float).Add(exp, leeway).Cmp(now) < 0 {
			t.Errorf("verified with exp %s, before now %d", claims["exp"], fuzzNow.Unix())
		}
		if nbf, ok := date("nbf"); ok && new(big.Float).Sub(nbf, leeway).Cmp(now) > 0 {
			t.Errorf("verified with nbf %s, after now %d", claims["nbf"], fuzzNow.Unix())
		}
		var iss string
		if err := json.Unmarshal([]byte(claims["iss"]), &iss); err != nil ||
			strings.TrimSuffix(iss, "/") != strings.TrimSuffix(fuzzIssuer, "/") {
			t.Errorf("verified with iss %s", claims["iss"])
		}
	})
}

// FuzzVerifier_Parse reads hostile JWKS documents. parse must never panic,
// and the keys it keeps are public signing keys only: a private key, a
// secret or an encryption key published in the set is skipped.
func FuzzVerifier_Parse(f *testing.F) {
	keys := fuzzKeys(f)
	f.Add(fuzzJWKS(f, keys))
	var whole jose.JSONWebKeySet
	for _, kid := range slices.Sorted(maps.Keys(keys)) {
		whole.Keys = append(whole.Keys, keys[kid])
	}
	wholeSet, _ := json.Marshal(whole)
	f.Add(wholeSet)
	rsaKey := keys["fuzz-rsa"]
	enc := rsaKey.Public()
	enc.Use, enc.Algorithm = "enc", "RSA-OAEP"
	encSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{enc}})
	f.Add(encSet)
	for _, s := range []string{
		`{"keys":[]}`, `{"keys":null}`, `{}`, `[]`, `null`, `{"keys":[1,"a",null,{},[]]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","use":"sig"}]}`,
		`{"keys":[{"kty":"RSA","n":"","e":""}]}`,
		`{"keys":[{"kty":"EC","crv":"P-521","x":"","y":"","d":""}]}`,
	} {
		f.Add([]byte(s))
	}

	v := &Verifier{logger: discardLogger()}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := v.parse(body)
		if err != nil {
			if got != nil {
				t.Errorf("keys with an error: %v", err)
			}
			return
		}
		for i, k := range got {
			if !k.IsPublic() {
				t.Errorf("key %d (%q) is not public: %T", i, k.KeyID, k.Key)
			}
			if k.Use != "" && k.Use != "sig" {
				t.Errorf("key %d (%q) is for %q, not signatures", i, k.KeyID, k.Use)
			}
			switch k.Key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Errorf("key %d (%q) is a %T", i, k.KeyID, k.Key)
			}
			if !k.Valid() {
				t.Errorf("key %d (%q) is not a valid key", i, k.KeyID)
			}
		}
	})
}
