package authserver_test

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
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
