package pki_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// renewer records how a RotatingSource asks for certificates.
type renewer struct {
	pki.Issuer
	mu       sync.Mutex
	issued   int
	renewals []*x509svid.SVID // the certificate each renewal presented
}

func (r *renewer) Issue(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	r.mu.Lock()
	r.issued++
	r.mu.Unlock()
	return r.Issuer.Issue(ctx, csr)
}

func (r *renewer) Renew(ctx context.Context, csr []byte, current *x509svid.SVID, _ *x509bundle.Bundle) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	r.mu.Lock()
	r.renewals = append(r.renewals, current)
	r.mu.Unlock()
	return r.Issuer.Issue(ctx, csr)
}

func (r *renewer) counts() (int, []*x509svid.SVID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.issued, append([]*x509svid.SVID(nil), r.renewals...)
}

// TestRotatingSourceRenewsWithRenewer: the first certificate comes from
// Issue, each later one from Renew, shown the certificate it replaces.
func TestRotatingSourceRenewsWithRenewer(t *testing.T) {
	ca := pkitest.NewCA(t, pkitest.WithLeafTTL(3*time.Second)) // X.509 times have whole seconds
	r := &renewer{Issuer: ca.Issuer("orders")}
	src, err := pki.NewRotatingSource(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first, _ := src.GetX509SVID()
	waitFor(t, "a renewal", 10*time.Second, func() bool {
		_, renewals := r.counts()
		return len(renewals) > 0
	})
	issued, renewals := r.counts()
	if issued != 1 || !renewals[0].Certificates[0].Equal(first.Certificates[0]) {
		t.Fatalf("got %d issuances and a first renewal presenting serial %x, want 1 and the first certificate %x",
			issued, renewals[0].Certificates[0].SerialNumber, first.Certificates[0].SerialNumber)
	}
}

// TestHTTPIssuerRenewsAnExpiredCertificateWithItsToken: a certificate that
// expired while the server was out of reach authenticates nothing, so
// Renew asks at IssueURL with Token instead of presenting it at RenewURL;
// a certificate still valid is presented at RenewURL.
func TestHTTPIssuerRenewsAnExpiredCertificateWithItsToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string // path and Authorization of each request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	ca := pkitest.NewCA(t)
	valid := ca.SVID("orders")
	leaf := *valid.Certificates[0]
	leaf.NotAfter = time.Now().Add(-time.Minute) // only Renew's choice reads it
	expired := &x509svid.SVID{ID: valid.ID, Certificates: []*x509.Certificate{&leaf}, PrivateKey: valid.PrivateKey}
	iss := &pki.HTTPIssuer{IssueURL: srv.URL + "/issue", RenewURL: srv.URL + "/renew",
		Token: func(context.Context) (string, error) { return "service-token", nil }}
	tests := []struct {
		name    string
		current *x509svid.SVID
		want    string
	}{
		{"expired: IssueURL with the token", expired, "/issue Bearer service-token"},
		{"valid: RenewURL with the certificate", valid, "/renew "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			if _, _, err := iss.Renew(t.Context(), []byte("csr"), tt.current, ca.Bundle()); err == nil {
				t.Fatalf("got no error from a server answering 503")
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.current == expired && (len(seen) != 1 || seen[0] != tt.want) {
				t.Errorf("got requests %q, want one: %q", seen, tt.want)
			}
			if tt.current == valid && slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, "/issue") }) {
				t.Errorf("got requests %q, want none at IssueURL", seen)
			}
		})
	}
}
