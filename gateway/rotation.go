package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyRoles is what `rulesgate keys` adds to a JWK set, under "rulesgate":
// which key signs, which is published ahead of signing, and when each
// retired key stopped. Other JWK readers ignore the member.
type keyRoles struct {
	Active  string               `json:"active"`
	Next    string               `json:"next,omitempty"`
	Retired map[string]time.Time `json:"retired,omitempty"`
}

// applyRoles marks the keys by their roles; every key of the set must
// have one.
func (ks *KeySet) applyRoles(r *keyRoles) error {
	byID := map[string]*SigningKey{}
	for _, k := range ks.Keys {
		byID[k.KeyID()] = k
	}
	if ks.Active = byID[r.Active]; ks.Active == nil {
		return fmt.Errorf("the active key %q is not in the set", r.Active)
	}
	if r.Next != "" {
		if ks.Next = byID[r.Next]; ks.Next == nil {
			return fmt.Errorf("the next key %q is not in the set", r.Next)
		}
	}
	ks.Retired = map[string]time.Time{}
	for kid, at := range r.Retired {
		if byID[kid] == nil {
			return fmt.Errorf("the retired key %q is not in the set", kid)
		}
		ks.Retired[kid] = at
	}
	for kid := range byID {
		if _, retired := ks.Retired[kid]; kid != r.Active && kid != r.Next && !retired {
			return fmt.Errorf("key %q has no role", kid)
		}
	}
	return nil
}

// MarshalPrivate writes the set as `rulesgate keys` keeps it: a JWK set of
// private keys, with their roles.
func (ks *KeySet) MarshalPrivate() ([]byte, error) {
	set := struct {
		Keys  []jose.JSONWebKey `json:"keys"`
		Roles keyRoles          `json:"rulesgate"`
	}{Roles: keyRoles{Active: ks.Active.KeyID(), Retired: ks.Retired}}
	if ks.Next != nil {
		set.Roles.Next = ks.Next.KeyID()
	}
	for _, k := range ks.Keys {
		set.Keys = append(set.Keys, k.jwk)
	}
	return json.MarshalIndent(set, "", "  ")
}

// Rotate moves the set one step, at now: retired keys older than keep are
// dropped; when there is a next key, the active key retires and the next
// one becomes active; and a new next key of alg is published, to sign
// after the following rotation. Resource servers that cache the JWKS for
// less than the time between two rotations never meet an unknown kid, and
// tokens signed by a retired key verify for keep after it retired.
func (ks *KeySet) Rotate(alg jose.SignatureAlgorithm, now time.Time, keep time.Duration) error {
	if alg == "" {
		alg = ks.Active.Algorithm()
	}
	fresh, err := GenerateKeySet(alg)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if ks.Retired == nil {
		ks.Retired = map[string]time.Time{}
	}
	for kid, at := range ks.Retired {
		if now.Sub(at) > keep {
			delete(ks.Retired, kid)
			ks.Keys = slices.DeleteFunc(ks.Keys, func(k *SigningKey) bool { return k.KeyID() == kid })
		}
	}
	if ks.Next != nil {
		ks.Retired[ks.Active.KeyID()] = now.UTC()
		ks.Active = ks.Next
	}
	ks.Next = fresh.Active
	ks.Keys = append(ks.Keys, fresh.Active)
	return nil
}

// WriteKeySet writes a private key set to path, readable by its owner
// only, replacing the file in one rename so that a replica reloading it
// never reads half of it.
func WriteKeySet(path string, ks *KeySet) error {
	data, err := ks.MarshalPrivate()
	if err != nil {
		return fmt.Errorf("write key set: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("write key set: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key set: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write key set: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key set: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write key set: %w", err)
	}
	return nil
}

// keyState is the key set in use and its public JWKS, encoded once.
type keyState struct {
	set  *KeySet
	jwks []byte
}

// SetKeys makes ks the gateway's keys from now on: the active key signs
// the next token, and the JWKS publishes every key of the set.
func (g *Gateway) SetKeys(ks *KeySet) error {
	if ks == nil || ks.Active == nil {
		return errors.New("set keys: no active key")
	}
	jwks, err := encodeJSON(ks.PublicJWKS())
	if err != nil {
		return fmt.Errorf("set keys: encode JWKS: %w", err)
	}
	g.keys.Store(&keyState{set: ks, jwks: jwks})
	return nil
}

func (g *Gateway) keySet() *KeySet { return g.keys.Load().set }

// Publishes reports whether the JWKS in use publishes kid.
func (g *Gateway) Publishes(kid string) bool {
	return slices.ContainsFunc(g.keySet().Keys, func(k *SigningKey) bool { return k.KeyID() == kid })
}

// serveJWKS publishes the public keys in use.
func (g *Gateway) serveJWKS(w http.ResponseWriter, r *http.Request) {
	g.serveDocument(g.keys.Load().jwks)(w, r)
}
