package authserver_test

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/pki"
)

func TestCreateJoinToken(t *testing.T) {
	ms := newMTLSServer(t)
	tests := []struct {
		name    string
		in      adminapi.NewJoinToken
		ttl     time.Duration // of the token, if created
		wantErr error
	}{
		{"default lifetime", adminapi.NewJoinToken{Name: "orders"}, time.Hour, nil},
		{"a lifetime", adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(2 * time.Hour)}, 2 * time.Hour, nil},
		{"the longest lifetime", adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(authserver.MaxJoinTokenTTL)},
			authserver.MaxJoinTokenTTL, nil},
		{"too long", adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(authserver.MaxJoinTokenTTL + time.Second)}, 0, adminapi.ErrInvalid},
		{"negative", adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(-time.Hour)}, 0, adminapi.ErrInvalid},
		{"no such client", adminapi.NewJoinToken{Name: "payments"}, 0, adminapi.ErrNotFound},
		{"not a service name", adminapi.NewJoinToken{Name: "a/b"}, 0, adminapi.ErrInvalid},
		{"empty name", adminapi.NewJoinToken{}, 0, adminapi.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			jt, err := ms.admin.CreateJoinToken(t.Context(), tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			// 256 bits, URL-safe, and never a JWT.
			if len(jt.Token) != 43 || strings.ContainsAny(jt.Token, ".+/=") {
				t.Errorf("got token %q, want 43 base64url characters", jt.Token)
			}
			if jt.ExpiresAt.Before(before.Add(tt.ttl)) || jt.ExpiresAt.After(time.Now().Add(tt.ttl)) {
				t.Errorf("got expiry %s, want %s from now", jt.ExpiresAt, tt.ttl)
			}
		})
	}
}

// TestJoinToken: a join token gets its service one certificate, once; a
// request that fails its checks leaves it usable.
func TestJoinToken(t *testing.T) {
	ms := newMTLSServer(t)
	issue := ms.issuer + "/pki/v1/issue"
	newToken := func(name string) string {
		jt, err := ms.admin.CreateJoinToken(t.Context(), adminapi.NewJoinToken{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return jt.Token
	}
	first := newToken("orders")
	status, body := postCSR(t, http.DefaultClient, issue, first, newCSR(t, &x509.CertificateRequest{}))
	if status != 200 {
		t.Fatalf("first use: got HTTP %d %s, want 200", status, body)
	}
	checkIssued(t, body, "spiffe://example.org/svc/orders")

	kept := newToken("orders")
	expiredAdmin, err := authserver.NewAdmin(authserver.AdminConfig{Store: ms.store, Keyring: ms.keyring,
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := expiredAdmin.CreateJoinToken(t.Context(), adminapi.NewJoinToken{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	retired := newToken("retired")
	tests := []struct {
		name   string
		token  string
		csr    []byte
		status int
		code   string
	}{
		{"second use", first, newCSR(t, &x509.CertificateRequest{}), 401, "invalid_token"},
		{"unknown token", keyring.RandomToken(32), newCSR(t, &x509.CertificateRequest{}), 401, "invalid_token"},
		{"expired", expired.Token, newCSR(t, &x509.CertificateRequest{}), 401, "invalid_token"},
		{"a disabled client's token", retired, newCSR(t, &x509.CertificateRequest{}), 403, "access_denied"},
		{"bad CSR", kept, []byte("not a CSR"), 400, "invalid_request"},
		{"after a bad CSR, still usable", kept, newCSR(t, &x509.CertificateRequest{}), 200, ""},
		{"and then used", kept, newCSR(t, &x509.CertificateRequest{}), 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postCSR(t, http.DefaultClient, issue, tt.token, tt.csr)
			if status != tt.status || tt.code != "" && !strings.Contains(string(body), `"error":"`+tt.code+`"`) {
				t.Fatalf("got HTTP %d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
}

// TestHTTPIssuerJoinToken is the contract between pki.HTTPIssuer and the
// server: a join token gets the first certificate, the certificate gets
// the next one over mutual TLS, and the join token is never sent again.
func TestHTTPIssuerJoinToken(t *testing.T) {
	ms := newMTLSServer(t)
	jt, err := ms.admin.CreateJoinToken(t.Context(), adminapi.NewJoinToken{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	iss := &pki.HTTPIssuer{
		IssueURL:    ms.issuer + "/pki/v1/issue",
		BundleURL:   ms.issuer + "/pki/v1/bundle",
		JoinToken:   jt.Token,
		RenewURL:    ms.mtlsURL + "/pki/v1/issue",
		RenewServer: pki.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/svc/authserver")),
	}
	src, err := pki.NewRotatingSource(t.Context(), iss)
	if err != nil {
		t.Fatalf("NewRotatingSource with a join token: %v", err)
	}
	defer src.Close()
	first, _ := src.GetX509SVID()
	if first.ID.String() != "spiffe://example.org/svc/orders" {
		t.Fatalf("got %s, want the join token's service", first.ID)
	}
	bundle, _ := src.GetX509BundleForTrustDomain(first.ID.TrustDomain())
	chain, _, err := iss.Renew(t.Context(), newCSR(t, &x509.CertificateRequest{}), first, bundle)
	if err != nil {
		t.Fatalf("Renew with the certificate: %v", err)
	}
	if id, _ := x509svid.IDFromCert(chain[0]); id != first.ID || chain[0].Equal(first.Certificates[0]) {
		t.Fatalf("renewal: got %s serial %x, want a new certificate for %s", id, chain[0].SerialNumber, first.ID)
	}
	// Without RenewURL the issuer would need Token: the join token is spent.
	iss.RenewURL = ""
	if _, _, err := iss.Renew(t.Context(), newCSR(t, &x509.CertificateRequest{}), first, bundle); err == nil ||
		!strings.Contains(err.Error(), "needs Token") {
		t.Fatalf("renewal without RenewURL or Token: got %v, want an error asking for Token", err)
	}
	// A disabled service can no longer renew.
	if _, err := ms.store.UpdateClient(t.Context(), "orders", func(c *store.Client) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	iss.RenewURL = ms.mtlsURL + "/pki/v1/issue"
	if _, _, err := iss.Renew(t.Context(), newCSR(t, &x509.CertificateRequest{}), first, bundle); err == nil ||
		!strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("renewal of a disabled service: got %v, want access_denied", err)
	}
}
