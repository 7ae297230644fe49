package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/pki"
)

// maxLeafBackdate bounds how far before issuance a certificate is valid, for
// peers whose clocks lag.
const maxLeafBackdate = time.Minute

// IssuedAt returns when a leaf certificate of this package was issued: its
// NotBefore undone of the backdating (a tenth of the lifetime, at most
// maxLeafBackdate — read from the certificate's own span, so whatever TTL it
// was issued with), to the second (X.509 times have whole seconds). It
// errs early, never late: a certificate whose NotAfter was cut short by an
// expiring root reads as issued up to a minute early.
func IssuedAt(leaf *x509.Certificate) time.Time {
	span := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotBefore.Add(min(span/11, maxLeafBackdate))
}

// ID returns the SPIFFE ID of the service name: spiffe://<td>/svc/<name>.
func (c *CA) ID(name string) (spiffeid.ID, error) {
	id, err := pki.ServiceID(c.td, name)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return id, nil
}

// Issue returns a certificate chain, leaf first, binding pub (an ECDSA
// P-256 public key) to the SPIFFE ID of the service name, valid for LeafTTL.
func (c *CA) Issue(pub crypto.PublicKey, name string) ([]*x509.Certificate, error) {
	id, err := c.ID(name)
	if err != nil {
		return nil, err
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key must be ECDSA P-256, got %T", ErrInvalidRequest, pub)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sync(); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	signer, err := c.signer(now)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Gatehouse"}, CommonName: name},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             now.Add(-min(c.leafTTL/10, maxLeafBackdate)),
		NotAfter:              earlier(now.Add(c.leafTTL), signer.cert.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, pub, signer.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse certificate: %w", err)
	}
	return []*x509.Certificate{leaf}, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SignCSR checks a DER-encoded PKCS #10 request — its signature, its key,
// and that it names no subject alternative name except, optionally, the
// SPIFFE ID of the service name — and issues a certificate for its key.
// The request's subject and extensions are ignored. Errors about the request
// wrap ErrInvalidRequest; a request naming another SPIFFE ID wraps
// ErrIDNotAllowed.
func (c *CA) SignCSR(der []byte, name string) ([]*x509.Certificate, error) {
	pub, err := c.CheckCSR(der, name)
	if err != nil {
		return nil, err
	}
	return c.Issue(pub, name)
}

// CheckCSR makes SignCSR's checks of a request for the service name, without
// issuing anything, and returns the request's public key.
func (c *CA) CheckCSR(der []byte, name string) (crypto.PublicKey, error) {
	id, err := c.ID(name)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed PKCS #10 request: %v", ErrInvalidRequest, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: request signature: %v", ErrInvalidRequest, err)
	}
	if len(csr.DNSNames)+len(csr.EmailAddresses)+len(csr.IPAddresses) > 0 {
		return nil, fmt.Errorf("%w: only a URI SAN with the SPIFFE ID is allowed, not DNS, email or IP SANs", ErrInvalidRequest)
	}
	switch len(csr.URIs) {
	case 0:
	case 1:
		if got, err := spiffeid.FromURI(csr.URIs[0]); err != nil || got != id {
			return nil, fmt.Errorf("%w: the request names %q; this caller may have only %s", ErrIDNotAllowed, csr.URIs[0].String(), id)
		}
	default:
		return nil, fmt.Errorf("%w: the request names %d URI SANs; at most one, %s, is allowed", ErrIDNotAllowed, len(csr.URIs), id)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key must be ECDSA P-256, got %T", ErrInvalidRequest, csr.PublicKey)
	}
	return csr.PublicKey, nil
}

// Issuer returns a pki.Issuer (and pki.BundleFetcher) that signs requests
// in process for the service name, with SignCSR.
func (c *CA) Issuer(name string) pki.Issuer {
	return &issuer{ca: c, name: name}
}

type issuer struct {
	ca   *CA
	name string
}

func (i *issuer) Issue(_ context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	chain, err := i.ca.SignCSR(csr, i.name)
	if err != nil {
		return nil, nil, err
	}
	b, err := i.ca.Bundle()
	return chain, b, err
}

func (i *issuer) FetchBundle(_ context.Context, td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != i.ca.td {
		return nil, fmt.Errorf("ca: no bundle for trust domain %q", td.Name())
	}
	return i.ca.Bundle()
}

// Interface guards.
var (
	_ pki.Issuer        = (*issuer)(nil)
	_ pki.BundleFetcher = (*issuer)(nil)
)
