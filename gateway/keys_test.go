package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// testPEMKeys returns three private keys in PEM: RSA as PKCS #1, EC P-256
// as SEC 1, Ed25519 as PKCS #8.
func testPEMKeys(t testing.TB) string {
	t.Helper()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	var b strings.Builder
	pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: edDER})
	return b.String()
}

func TestParseKeySet_PEM(t *testing.T) {
	ks, err := ParseKeySet([]byte(testPEMKeys(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
	if len(ks.Keys) != len(want) {
		t.Fatalf("keys: got %d, want %d", len(ks.Keys), len(want))
	}
	for i, k := range ks.Keys {
		if got := k.Algorithm(); got != want[i] {
			t.Errorf("key %d: got %s, want %s", i, got, want[i])
		}
	}
	if ks.Active != ks.Keys[0] {
		t.Errorf("the first key must be active")
	}
}

// TestSigningKey_KeyIDIsThumbprint: the kid is the RFC 7638 thumbprint, so
// it stays the same across restarts and replicas.
func TestSigningKey_KeyIDIsThumbprint(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7638 §3.2: the required members in lexicographic order.
	size := (ecKey.Curve.Params().BitSize + 7) / 8
	enc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pubBytes, _ := ecKey.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	members := `{"crv":"P-256","kty":"EC","x":"` + enc(pubBytes[1:1+size]) + `","y":"` + enc(pubBytes[1+size:]) + `"}`
	sum := crypto.SHA256.New()
	sum.Write([]byte(members))
	if got, want := ks.Active.KeyID(), enc(sum.Sum(nil)); got != want {
		t.Errorf("kid: got %s, want %s", got, want)
	}
	again, _ := ParseKeySet(data)
	if again.Active.KeyID() != ks.Active.KeyID() {
		t.Errorf("kid changes between loads")
	}
}

func TestParseKeySet_JWKSet(t *testing.T) {
	gen, err := GenerateKeySet(jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	named := gen.Active.jwk
	named.KeyID = "my-key-2026"
	data, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{named}})
	ks, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.Active.KeyID(); got != "my-key-2026" {
		t.Errorf("kid: got %s, want the set's own my-key-2026", got)
	}
	token, err := ks.Active.Sign([]byte(`{"sub":"x"}`), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(ks.PublicJWKS().Keys[0].Key); err != nil {
		t.Errorf("verify with the published key: %v", err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ: got %v, want at+jwt", typ)
	}
}

func TestParseKeySet_Refuses(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pubJWK, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ecKey.PublicKey}}})
	tests := map[string]string{
		"RSA under 2048 bits": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})),
		"a public key in PEM": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		"a public JWK":        string(pubJWK),
		"nothing":             "not a key at all",
		"empty JWK set":       `{"keys":[]}`,
	}
	for name, data := range tests {
		if _, err := ParseKeySet([]byte(data)); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}
