package pki

import (
	"context"
	"crypto/x509"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Issuer issues a service's certificates. HTTPIssuer asks a Gatehouse
// authorization server; the built-in CA of `gatehouse dev` issues in process.
type Issuer interface {
	// Issue submits csr, a DER-encoded PKCS #10 certificate request, and
	// returns the certificate chain, leaf first, and the issuer's current
	// trust bundle, which may be nil. The issuer decides the SPIFFE ID: a
	// request may name it in a URI SAN or leave it out.
	Issue(ctx context.Context, csr []byte) (chain []*x509.Certificate, bundle *x509bundle.Bundle, err error)
}

// Renewer is an Issuer that authenticates a renewal with the certificate
// being renewed. A RotatingSource that holds a certificate renews it with
// Renew; its first certificate comes from Issue.
type Renewer interface {
	// Renew is Issue for the holder of current, whose issuer's trust
	// bundle is bundle.
	Renew(ctx context.Context, csr []byte, current *x509svid.SVID, bundle *x509bundle.Bundle) (chain []*x509.Certificate, newBundle *x509bundle.Bundle, err error)
}

// IssuerFunc adapts a function to Issuer.
type IssuerFunc func(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error)

// Issue calls f.
func (f IssuerFunc) Issue(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	return f(ctx, csr)
}

// BundleFetcher fetches the current trust bundle of a trust domain, so that
// a RotatingSource learns of a new root between two renewals.
type BundleFetcher interface {
	FetchBundle(ctx context.Context, td spiffeid.TrustDomain) (*x509bundle.Bundle, error)
}

// BundleFile is a BundleFetcher that reads the bundle from a PEM file each
// time, such as the bundle.pem `gatehouse ca issue` writes.
type BundleFile string

// FetchBundle reads the file.
func (f BundleFile) FetchBundle(_ context.Context, td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return x509bundle.Load(td, string(f))
}

// Interface guards.
var (
	_ Issuer        = IssuerFunc(nil)
	_ BundleFetcher = BundleFile("")
)
