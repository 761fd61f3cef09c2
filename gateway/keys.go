package gateway

import (
	"bytes"
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
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA key the gateway signs with (RFC 7518 §3.3).
const minRSABits = 2048

// SigningKey is one of the gateway's private keys, with its algorithm and
// key id. It is safe for concurrent use.
type SigningKey struct {
	jwk     jose.JSONWebKey
	signers sync.Map // token type -> jose.Signer
}

// KeyID returns the key's kid: the RFC 7638 thumbprint unless the key set
// named one.
func (k *SigningKey) KeyID() string { return k.jwk.KeyID }

// Algorithm returns the JWS algorithm the key signs with.
func (k *SigningKey) Algorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.jwk.Algorithm)
}

// Public returns the key's public half as a JWK, as the JWKS publishes it.
func (k *SigningKey) Public() jose.JSONWebKey {
	pub := k.jwk.Public()
	pub.Use = "sig"
	return pub
}

// Sign signs payload as a compact JWS with the key's algorithm and kid and
// typ as the header's type (RFC 7515 §4.1.9); an empty typ means "JWT".
func (k *SigningKey) Sign(payload []byte, typ string) (string, error) {
	if typ == "" {
		typ = "JWT"
	}
	s, ok := k.signers.Load(typ)
	if !ok {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm(), Key: k.jwk}, opts)
		if err != nil {
			return "", fmt.Errorf("sign token: %w", err)
		}
		s, _ = k.signers.LoadOrStore(typ, signer)
	}
	jws, err := s.(jose.Signer).Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return jws.CompactSerialize()
}

// KeySet is the gateway's keys: the active key signs, and every key is
// published in the JWKS: the next key before it signs, the retired ones
// while tokens they signed may still be in use.
type KeySet struct {
	// Active signs new tokens.
	Active *SigningKey
	// Next will sign after the next rotation; nil for none.
	Next *SigningKey
	// Retired tells when each retired key (by kid) stopped signing.
	Retired map[string]time.Time
	// Keys holds every key, the active one included, in file order.
	Keys []*SigningKey
}

// PublicJWKS returns the public halves of every key.
func (ks *KeySet) PublicJWKS() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(ks.Keys))}
	for _, k := range ks.Keys {
		set.Keys = append(set.Keys, k.Public())
	}
	return set
}

// LoadKeySet reads a key file: PEM blocks (PKCS #1, PKCS #8 or SEC 1
// private keys of RSA, EC or Ed25519) or a JWK set. In a set written by
// `rulesgate keys` the roles say which key is active; otherwise the first
// key is.
func LoadKeySet(path string) (*KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("load signing keys from %s: %w", path, err)
	}
	return ks, nil
}

// ParseKeySet parses the contents of a key file, as LoadKeySet describes.
func ParseKeySet(data []byte) (*KeySet, error) {
	var jwks []jose.JSONWebKey
	var roles *keyRoles
	var err error
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		jwks, roles, err = parseJWKs(trimmed)
	} else {
		jwks, err = parsePEMKeys(data)
	}
	if err != nil {
		return nil, err
	}
	if len(jwks) == 0 {
		return nil, errors.New("no private key found")
	}

	ks := &KeySet{}
	for i := range jwks {
		k, err := newSigningKey(jwks[i])
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	ks.Active = ks.Keys[0]
	if roles != nil {
		if err := ks.applyRoles(roles); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// GenerateKeySet returns a set of one new key for alg (ES256, RS256 or EdDSA).
func GenerateKeySet(alg jose.SignatureAlgorithm) (*KeySet, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("generate signing key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	k, err := newSigningKey(jose.JSONWebKey{Key: key})
	if err != nil {
		return nil, err
	}
	return &KeySet{Active: k, Keys: []*SigningKey{k}}, nil
}

func parseJWKs(data []byte) ([]jose.JSONWebKey, *keyRoles, error) {
	var set struct {
		jose.JSONWebKeySet
		Roles *keyRoles `json:"rulesgate"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("parse JWK set: %w", err)
	}
	if len(set.Keys) == 0 {
		var one jose.JSONWebKey
		if err := json.Unmarshal(data, &one); err == nil && one.Key != nil {
			return []jose.JSONWebKey{one}, nil, nil
		}
	}
	return set.Keys, set.Roles, nil
}

func parsePEMKeys(data []byte) ([]jose.JSONWebKey, error) {
	var keys []jose.JSONWebKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return keys, nil
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse PEM block %q: %w", block.Type, err)
		}
		keys = append(keys, jose.JSONWebKey{Key: key})
	}
}

// newSigningKey checks that jwk holds a private key the gateway can sign
// with, and fills in its algorithm and kid.
func newSigningKey(jwk jose.JSONWebKey) (*SigningKey, error) {
	if jwk.IsPublic() {
		return nil, errors.New("a public key cannot sign")
	}
	alg, err := algorithmFor(jwk.Key)
	if err != nil {
		return nil, err
	}
	if jwk.Algorithm != "" && jwk.Algorithm != string(alg) {
		return nil, fmt.Errorf("key says alg %q, the gateway signs with %q for this key type", jwk.Algorithm, alg)
	}
	jwk.Algorithm = string(alg)
	if jwk.KeyID == "" {
		sum, err := jwk.Thumbprint(crypto.SHA256) // RFC 7638 §3
		if err != nil {
			return nil, fmt.Errorf("key thumbprint: %w", err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(sum)
	}
	return &SigningKey{jwk: jwk}, nil
}

// algorithmFor picks the JWS algorithm from the key's type (RFC 7518 §3.1,
// RFC 8037 §3.1).
func algorithmFor(key any) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits; at least %d needed", k.N.BitLen(), minRSABits)
		}
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", fmt.Errorf("unsupported EC curve %s", k.Curve.Params().Name)
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T", key)
}
