package resource_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// exampleToken returns a JWKS with one fresh key and an access token for
// alice signed with it, as the authorization server would issue them.
func exampleToken() (jwks []byte, token string) {
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		log.Fatal(err)
	}
	jwks, err = jose.NewKeySet(key.Public()).MarshalJSON()
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	token, err = jose.Sign(key, jose.TypeAccessToken, jose.Claims{
		Issuer:   "https://auth.example.com",
		Subject:  "alice",
		Audience: jose.Audience{"https://orders.example.com"},
		Expiry:   jose.NewNumericDate(now.Add(5 * time.Minute)),
		IssuedAt: jose.NewNumericDate(now),
		Scope:    "orders:read",
		Roles:    []string{"clerk"},
	})
	if err != nil {
		log.Fatal(err)
	}
	return jwks, token
}

func ExampleVerifier() {
	jwks, token := exampleToken()

	// In production, NewVerifier with the same Config fetches the JWKS by
	// discovery below Issuer; NewStaticVerifier takes it as a document.
	v, err := resource.NewStaticVerifier(resource.Config{
		Issuer:   "https://auth.example.com",
		Audience: []string{"https://orders.example.com"},
	}, jwks)
	if err != nil {
		log.Fatal(err)
	}

	p, err := v.Verify(context.Background(), token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Subject, p.Scopes, p.HasRole("clerk"))

	_, err = v.Verify(context.Background(), token+"x")
	fmt.Println(err != nil)
	// Output:
	// alice [orders:read] true
	// true
}

func ExampleMiddleware() {
	jwks, token := exampleToken()
	v, err := resource.NewStaticVerifier(resource.Config{
		Issuer:   "https://auth.example.com",
		Audience: []string{"https://orders.example.com"},
	}, jwks)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "orders of %s\n", resource.FromContext(r.Context()).Subject)
	})
	mux.Handle("DELETE /orders", resource.Require(resource.RequireRole("admin"),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv := httptest.NewServer(resource.Middleware(v)(mux))
	defer srv.Close()

	for _, req := range []struct{ method, token string }{
		{http.MethodGet, ""},
		{http.MethodGet, token},
		{http.MethodDelete, token},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+"/orders", nil)
		if req.token != "" {
			r.Header.Set("Authorization", "Bearer "+req.token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %q %s", req.method, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	// Output:
	// GET 401 "Bearer realm=\"gatehouse\"" {"error":"invalid_request","error_description":"bearer token required"}
	// GET 200 "" orders of alice
	// DELETE 403 "" {"error":"access_denied","error_description":"access denied"}
}

func ExampleAnyOf() {
	p := &resource.Principal{Subject: "alice", Roles: []string{"clerk"}, Scopes: []string{"orders:read"}}
	canRead := resource.AnyOf(resource.RequireRole("admin"), resource.RequireScope("orders:read"))
	canWrite := resource.AllOf(resource.RequireRole("clerk"), resource.RequireScope("orders:write"))
	fmt.Println(canRead(context.Background(), p))
	fmt.Println(canWrite(context.Background(), p))
	// Output:
	// <nil>
	// resource: insufficient scope, missing orders:write
}
