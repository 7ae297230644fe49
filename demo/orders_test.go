package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

const issuer, audience = "https://auth.test", "demo-api"

// tokens mints access tokens for named users with a fresh key and returns
// a verifier that accepts them.
func tokens(t *testing.T) (func(sub string, roles ...string) string, resource.TokenVerifier) {
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := jose.NewKeySet(key.Public()).MarshalJSON()
	v, err := resource.NewStaticVerifier(resource.Config{Issuer: issuer, Audience: []string{audience}}, jwks)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub string, roles ...string) string {
		now := time.Now()
		tok, err := jose.Sign(key, jose.TypeAccessToken, jose.Claims{Issuer: issuer, Subject: sub, Audience: jose.Audience{audience},
			IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute)), Roles: roles, Username: sub})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return mint, v
}

func do(t *testing.T, h http.Handler, method, path, token, body string) (int, Order) {
	t.Helper()
	req := httptest.NewRequestWithContext(context.Background(), method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var o Order
	json.Unmarshal(rec.Body.Bytes(), &o)
	return rec.Code, o
}

func TestOrdersACL(t *testing.T) {
	mint, v := tokens(t)
	h := NewOrders(v)
	alice, bob, carol, dave := mint("alice", "consumer"), mint("bob", "consumer"), mint("carol", "consumer", "admin"), mint("dave")
	code, ord := do(t, h, "POST", "/orders", alice, `{"item":"pizza","quantity":2}`)
	if code != http.StatusCreated || ord.ID == "" || ord.Owner != "alice" {
		t.Fatalf("create: got %d %+v, want 201 owned by alice", code, ord)
	}
	path := "/orders/" + ord.ID
	steps := []struct {
		name         string
		method, path string
		token, body  string
		want         int
	}{
		{"no token", "GET", path, "", "", http.StatusUnauthorized},
		{"owner reads", "GET", path, alice, "", http.StatusOK},
		{"stranger reads", "GET", path, bob, "", http.StatusForbidden},
		{"admin reads", "GET", path, carol, "", http.StatusOK},
		{"stranger shares", "PUT", path + "/sharing", bob, `{"users":["bob"]}`, http.StatusForbidden},
		{"bad sharing body", "PUT", path + "/sharing", alice, `{"users":"bob"}`, http.StatusBadRequest},
		{"owner shares with bob", "PUT", path + "/sharing", alice, `{"users":["bob"]}`, http.StatusOK},
		{"bob now reads", "GET", path, bob, "", http.StatusOK},
		{"bob still cannot share", "PUT", path + "/sharing", bob, `{"users":["bob","dave"]}`, http.StatusForbidden},
		{"dave still cannot read", "GET", path, dave, "", http.StatusForbidden},
		{"owner unshares", "PUT", path + "/sharing", alice, `{"users":[]}`, http.StatusOK},
		{"bob no longer reads", "GET", path, bob, "", http.StatusForbidden},
		{"unknown order", "GET", "/orders/nope", alice, "", http.StatusNotFound},
		{"bad order body", "POST", "/orders", alice, `{"item":"","quantity":0}`, http.StatusBadRequest},
		{"unknown field", "POST", "/orders", alice, `{"item":"x","quantity":1,"owner":"bob"}`, http.StatusBadRequest},
	}
	for _, s := range steps {
		if code, _ := do(t, h, s.method, s.path, s.token, s.body); code != s.want {
			t.Fatalf("%s: got %d, want %d", s.name, code, s.want)
		}
	}
}

func TestOrdersList(t *testing.T) {
	mint, v := tokens(t)
	h := NewOrders(v)
	alice, bob, carol := mint("alice"), mint("bob"), mint("carol", "admin")
	do(t, h, "POST", "/orders", alice, `{"item":"a","quantity":1}`)
	do(t, h, "POST", "/orders", bob, `{"item":"b","quantity":1}`)
	count := func(token string) int {
		req := httptest.NewRequest("GET", "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var list []Order
		json.Unmarshal(rec.Body.Bytes(), &list)
		return len(list)
	}
	if a, b, c := count(alice), count(bob), count(carol); a != 1 || b != 1 || c != 2 {
		t.Fatalf("got alice %d, bob %d, carol %d orders, want 1, 1 and all 2", a, b, c)
	}
}
