package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rulesgate/rulesgate/compat"
)

// TestGateway_CorrelationIDIsTheGateways: Auth0 does: an action's
// event.transaction.correlation_id is the issuer's. A client's
// X-Request-Id names the request in the logs, never the correlation id an
// action may key a cache on.
func TestGateway_CorrelationIDIsTheGateways(t *testing.T) {
	up := newFakeIssuer(t, "/oauth/token")
	gw := newTestGateway(t, up.URL, compat.Config{NarrowScopes: true, Actions: compileRules(t,
		"10-correlation.lua", `return { onExecuteCredentialsExchange = function(event, api)
			api.accessToken.setCustomClaim("https://example.com/correlation", event.transaction.correlation_id)
		end }`)})

	seen := map[string]bool{}
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/oauth/token", strings.NewReader(ccForm("read:a").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", "client-chosen")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		status, _, answer := readAnswer(t, resp)
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, answer)
		}
		claims := verifyThroughGateway(t, gw.URL, answer["access_token"].(string))
		id, _ := claims["https://example.com/correlation"].(string)
		if id == "" || id == "client-chosen" || seen[id] {
			t.Fatalf("correlation id %q: want a new one made by the gateway for each request", id)
		}
		seen[id] = true
	}
}
