package pki

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// StaticSource serves one certificate and one trust bundle that never
// change, such as the files `gatehouse ca issue` writes. It implements
// x509svid.Source and x509bundle.Source and is safe for concurrent use.
type StaticSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

// NewStaticSource returns a source serving svid and bundle.
func NewStaticSource(svid *x509svid.SVID, bundle *x509bundle.Bundle) *StaticSource {
	return &StaticSource{svid: svid, bundle: bundle}
}

// LoadSource reads a certificate chain (PEM, leaf first), its private key
// (PEM, PKCS #8) and the trust bundle (PEM certificates) of the
// certificate's trust domain, and checks that the certificate verifies
// against the bundle now. The source never reads the files again: for files
// that are renewed in place, use NewFileSource.
func LoadSource(certFile, keyFile, bundleFile string) (*StaticSource, error) {
	svid, err := x509svid.Load(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s: %w", certFile, err)
	}
	bundle, err := x509bundle.Load(svid.ID.TrustDomain(), bundleFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s: %w", bundleFile, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return nil, fmt.Errorf("pki: %s does not verify against %s: %w", certFile, bundleFile, err)
	}
	return NewStaticSource(svid, bundle), nil
}

// GetX509SVID returns the certificate. It implements x509svid.Source.
func (s *StaticSource) GetX509SVID() (*x509svid.SVID, error) {
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle if it is td's. It
// implements x509bundle.Source.
func (s *StaticSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return bundleFor(s.bundle, td)
}

func bundleFor(b *x509bundle.Bundle, td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if b == nil || b.TrustDomain() != td {
		return nil, fmt.Errorf("pki: no trust bundle for trust domain %q", td.Name())
	}
	return b, nil
}

// Interface guards.
var (
	_ x509svid.Source   = (*StaticSource)(nil)
	_ x509bundle.Source = (*StaticSource)(nil)
)
