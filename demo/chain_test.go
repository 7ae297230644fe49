package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// exchangeStub stands in for the token exchange: it mints, for the caller in
// the context, a token whose audience is consumers and whose act names orders.
type exchangeStub struct {
	key *jose.PrivateKey
}

func (e exchangeStub) Token(ctx context.Context) (string, error) {
	p := resource.FromContext(ctx)
	now := time.Now()
	return jose.Sign(e.key, jose.TypeAccessToken, jose.Claims{Issuer: issuer, Subject: p.Subject, Audience: jose.Audience{"consumers"},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute)), Roles: p.Roles})
}

func TestOrdersValidateWithConsumers(t *testing.T) {
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := jose.NewKeySet(key.Public()).MarshalJSON()
	verifier := func(aud string) resource.TokenVerifier {
		v, err := resource.NewStaticVerifier(resource.Config{Issuer: issuer, Audience: []string{aud}}, jwks)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	consumers := httptest.NewServer(NewConsumersWith(ConsumersConfig{Verifier: verifier(audience), ServiceVerifier: verifier("consumers")}))
	defer consumers.Close()
	now := time.Now()
	alice, _ := jose.Sign(key, jose.TypeAccessToken, jose.Claims{Issuer: issuer, Subject: "alice", Audience: jose.Audience{audience},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute))})

	tests := []struct {
		name   string
		source outbound.TokenSource
		want   int
	}{
		{"exchanged token for the consumers audience", exchangeStub{key}, http.StatusCreated},
		{"the original token is refused by consumers", outbound.Relay, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orders := NewOrdersWith(OrdersConfig{Verifier: verifier(audience), ConsumersURL: consumers.URL,
				Client: &http.Client{Transport: &outbound.Transport{Source: tt.source}}})
			if code, _ := do(t, orders, "POST", "/orders", alice, `{"item":"pizza","quantity":1}`); code != tt.want {
				t.Fatalf("got %d, want %d", code, tt.want)
			}
		})
	}
	// The validate endpoint answers only for the token's own subject.
	bob, _ := exchangeStub{key}.Token(resource.NewContext(context.Background(), &resource.Principal{Subject: "bob"}))
	req, _ := http.NewRequest("GET", consumers.URL+"/consumers/alice/validate", nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got %d for bob validating alice, want 403", resp.StatusCode)
	}
}
