package gateway

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func BenchmarkTmpJSON(b *testing.B) {
	up := newFakeIssuer(b, "/oauth/token")
	raw := up.sign(b, up.nextClaims())
	answer, _ := json.Marshal(map[string]any{"access_token": raw, "token_type": "Bearer", "expires_in": 86400, "scope": "a b c"})
	b.Run("decodeAnswer", func(b *testing.B) {
		for b.Loop() {
			decodeAnswer(answer)
		}
	})
	a, _, _ := decodeAnswer(answer)
	b.Run("marshalAnswer", func(b *testing.B) {
		for b.Loop() {
			a.Set("access_token", raw)
			a.MarshalJSON()
		}
	})
	b.Run("withTimeout", func(b *testing.B) {
		for b.Loop() {
			_, c := context.WithTimeout(context.Background(), time.Second)
			c()
		}
	})
}
