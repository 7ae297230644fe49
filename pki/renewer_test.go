package pki_test

import (
	"context"
	"crypto/x509"
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
