package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// claimsOf decodes a JWT's payload without verifying it: the services
// verified it already; the test only looks at what they were given.
func claimsOf(t *testing.T, authorization string) map[string]any {
	t.Helper()
	token := strings.TrimPrefix(authorization, "Bearer ")
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("got %q, want a bearer JWT", authorization)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOrdersCallsConsumersWithAnExchangedToken follows gateway → orders →
// consumers: orders asks consumers about the caller with alice's token
// exchanged (RFC 8693) for one whose audience is consumers and whose act
// claim names orders, over mTLS; consumers never sees alice's original token.
func TestOrdersCallsConsumersWithAnExchangedToken(t *testing.T) {
	h := start(t, nil)
	r := h.call(t, http.MethodPost, "/api/orders", h.basic(t, "alice"), `{"item":"tea","quantity":3}`, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("create order: got %d %s, want 201", r.status, r.body)
	}
	toOrders := h.services.last(t, "orders")
	toConsumers := h.services.last(t, "consumers")
	original, exchanged := claimsOf(t, toOrders.header.Get("Authorization")), claimsOf(t, toConsumers.header.Get("Authorization"))
	sub, _ := original["sub"].(string)
	if want := "/consumers/" + sub + "/validate"; toConsumers.path != want {
		t.Fatalf("got consumers path %q, want %q", toConsumers.path, want)
	}
	if toConsumers.header.Get("Authorization") == toOrders.header.Get("Authorization") {
		t.Fatalf("consumers got the caller's original token, want an exchanged one")
	}
	aud := audienceOf(exchanged["aud"])
	act, _ := exchanged["act"].(map[string]any)
	switch {
	case exchanged["sub"] != sub:
		t.Errorf("exchanged token: got sub %v, want alice's %q", exchanged["sub"], sub)
	case !slices.Equal(aud, []string{"consumers"}):
		t.Errorf("exchanged token: got aud %v, want [consumers]", aud)
	case act == nil || act["sub"] != "orders":
		t.Errorf("exchanged token: got act %v, want {sub: orders}", exchanged["act"])
	case exchanged["exp"].(float64) > original["exp"].(float64):
		t.Errorf("exchanged token outlives the original: exp %v > %v", exchanged["exp"], original["exp"])
	}
	if a := audienceOf(original["aud"]); slices.Contains(a, "consumers") {
		t.Errorf("the original token's audience %v includes consumers: the exchange would prove nothing", a)
	}
}

func audienceOf(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}
