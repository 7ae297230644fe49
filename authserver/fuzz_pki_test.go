package authserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// FuzzPKIIssue sends arbitrary Authorization headers and bodies to the
// issuance endpoint, where a join token is among the credentials: the answer
// is never a 5xx, and the join token is used up only by a request that got
// a certificate. Requests go straight to the handler, so a panic fails the
// test instead of being swallowed by net/http.
func FuzzPKIIssue(f *testing.F) {
	c, err := ca.Init(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")})
	if err != nil {
		f.Fatal(err)
	}
	fx := newFixture(f, fixtureOptions{config: func(cfg *Config) { cfg.CA = c }})
	fx.addClient(clientSpec("orders", "client_credentials"))
	jt, err := fx.srv.admin.CreateJoinToken(f.Context(), adminapi.NewJoinToken{Name: "orders"})
	if err != nil {
		f.Fatal(err)
	}
	hash := fx.keyring.Hasher(keyring.PurposeJoinToken).Hash(jt.Token)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	for _, auth := range []string{"Bearer " + jt.Token, "Bearer " + jt.Token + "x", "Bearer a.b.c", "bearer " + jt.Token,
		"Bearer", "Bearer  " + jt.Token, "Basic b3JkZXJzOng=", "", "Bearer e30.e30.e30"} {
		f.Add(auth, []byte("garbage"))
		f.Add(auth, csr[:len(csr)/2])
	}
	f.Add("Bearer "+jt.Token, csr)
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		before, err := fx.store.GetJoinToken(t.Context(), hash)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, fx.public.URL+"/pki/v1/issue", bytes.NewReader(body))
		req.Header.Set("Content-Type", pki.ContentTypeCSR)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req) // a panic fails the test
		if rec.Code >= 500 {
			t.Fatalf("Authorization %q: got %d %s, want no 5xx", auth, rec.Code, rec.Body)
		}
		after, err := fx.store.GetJoinToken(t.Context(), hash)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK && (before.UsedAt == nil) != (after.UsedAt == nil) {
			t.Fatalf("Authorization %q: got HTTP %d and the join token used up", auth, rec.Code)
		}
	})
}
