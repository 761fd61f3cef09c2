package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rulesgate/rulesgate/compat"
)

// resourceServer verifies tokens as an API does: with the gateway's JWKS,
// cached for ttl and fetched again only when the cache is that old.
type resourceServer struct {
	t       *testing.T
	jwksURL string
	ttl     time.Duration
	keys    jose.JSONWebKeySet
	fetched time.Time
}

func (rs *resourceServer) verify(token string, now time.Time) error {
	if rs.fetched.IsZero() || now.Sub(rs.fetched) >= rs.ttl {
		resp, err := http.Get(rs.jwksURL)
		if err != nil {
			rs.t.Fatal(err)
		}
		rs.keys = jose.JSONWebKeySet{}
		json.NewDecoder(resp.Body).Decode(&rs.keys)
		resp.Body.Close()
		rs.fetched = now
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	keys := rs.keys.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return errUnknownKey
	}
	_, err = jws.Verify(keys[0])
	return err
}

// TestRotation_NoUnknownKid runs the documented rotation end to end: a
// rotation every 30 minutes, a resource server that caches the JWKS for
// 10 minutes, tokens issued all along and kept for a day. No token ever
// names a kid the resource server's cached JWKS lacks, and tokens signed
// by a retired key verify until it is dropped.
func TestRotation_NoUnknownKid(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	ks, err := GenerateKeySet(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true}, func(c *Config) { c.Keys = ks })
	rs := &resourceServer{t: t, jwksURL: gw.URL + "/.well-known/jwks.json", ttl: 10 * time.Minute}

	type issued struct {
		token string
		at    time.Time
	}
	var tokens []issued
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	keep := 48 * time.Hour
	for minute := 0; minute <= 6*60; minute += 5 {
		now := start.Add(time.Duration(minute) * time.Minute)
		if minute > 0 && minute%30 == 0 {
			if err := ks.Rotate("", now, keep); err != nil {
				t.Fatal(err)
			}
			if err := gw.SetKeys(ks); err != nil { // as a reload does
				t.Fatal(err)
			}
		}
		status, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
		if status != http.StatusOK {
			t.Fatalf("minute %d: status %d %v", minute, status, answer)
		}
		tokens = append(tokens, issued{answer["access_token"].(string), now})
		for _, tok := range tokens {
			if now.Sub(tok.at) > 24*time.Hour {
				continue // past the token lifetime
			}
			if err := rs.verify(tok.token, now); err != nil {
				t.Fatalf("minute %d: a token from minute %v does not verify: %v",
					minute, tok.at.Sub(start).Minutes(), err)
			}
		}
	}
	if len(ks.Retired) == 0 || ks.Next == nil {
		t.Errorf("after rotations: %d retired, next %v", len(ks.Retired), ks.Next)
	}
}

// TestRotation_TooFastFails shows why the order matters: two rotations
// closer together than the resource server's cache let a token name a key
// it has not fetched yet.
func TestRotation_TooFastFails(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	ks, _ := GenerateKeySet(jose.ES256)
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true}, func(c *Config) { c.Keys = ks })
	rs := &resourceServer{t: t, jwksURL: gw.URL + "/.well-known/jwks.json", ttl: 10 * time.Minute}
	now := time.Now()
	_, _, answer := postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if err := rs.verify(answer["access_token"].(string), now); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the next key of the first rotation signs after the second
		ks.Rotate("", now, time.Hour)
	}
	gw.SetKeys(ks)
	_, _, answer = postForm(t, gw.URL+"/oauth/token", ccForm("read:a"))
	if err := rs.verify(answer["access_token"].(string), now.Add(time.Minute)); err == nil {
		t.Error("a key published a minute ago verified with a JWKS cached before it")
	}
}

// TestRotation_Roles: a set keeps its roles through a write and a read;
// retired keys past keep are dropped; a set whose roles name a missing
// key, or leave a key without a role, is refused.
func TestRotation_Roles(t *testing.T) {
	ks, _ := GenerateKeySet(jose.EdDSA)
	now := time.Now().UTC()
	ks.Rotate("", now, time.Hour)                    // next published
	ks.Rotate("", now.Add(time.Minute), time.Hour)   // first retired
	ks.Rotate("", now.Add(2*time.Minute), time.Hour) // second retired
	if len(ks.Keys) != 4 || len(ks.Retired) != 2 {
		t.Fatalf("keys %d, retired %d; want 4 and 2", len(ks.Keys), len(ks.Retired))
	}
	data, err := ks.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Active.KeyID() != ks.Active.KeyID() || back.Next.KeyID() != ks.Next.KeyID() || len(back.Retired) != 2 {
		t.Errorf("round trip lost the roles")
	}
	if jwks, _ := json.Marshal(back.PublicJWKS()); strings.Contains(string(jwks), `"d"`) || len(back.PublicJWKS().Keys) != 4 {
		t.Errorf("the JWKS must publish the 4 public keys only: %s", jwks)
	}

	back.Rotate("", now.Add(3*time.Hour), time.Hour) // both retired keys are past keep
	if len(back.Retired) != 1 || len(back.Keys) != 3 {
		t.Errorf("after keep: keys %d, retired %d; want 3 and 1", len(back.Keys), len(back.Retired))
	}

	for _, bad := range []string{
		strings.Replace(string(data), `"active": "`+ks.Active.KeyID(), `"active": "missing`, 1),
		strings.Replace(string(data), `"next": "`+ks.Next.KeyID()+`",`, ``, 1),
	} {
		if _, err := ParseKeySet([]byte(bad)); err == nil {
			t.Errorf("accepted a set with broken roles:\n%s", bad)
		}
	}
}
