// Package pkitest provides a throwaway certificate authority for testing
// code that uses package pki, as net/http/httptest provides throwaway
// servers:
//
//	ca := pkitest.NewCA(t)
//	ln, _ := net.Listen("tcp", "127.0.0.1:0")
//	go http.Serve(tls.NewListener(ln, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeID(ca.ID("gateway")))), h)
//	tr := &http.Transport{TLSClientConfig: pki.ClientConfig(ca.Source("gateway"), ca, pki.AuthorizeID(ca.ID("orders")))}
//	resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String())
//
// The CA lives in memory and is Gatehouse's own (internal/ca): its
// certificates are what `gatehouse dev` and the issuance endpoint issue.
package pkitest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// DefaultTrustDomain is the trust domain of a CA made without
// WithTrustDomain.
const DefaultTrustDomain = "example.org"

// CA is a certificate authority for tests. It implements x509bundle.Source
// with its current bundle. Its methods fail the test on error.
type CA struct {
	// TrustDomain of the CA's certificates.
	TrustDomain spiffeid.TrustDomain

	t  testing.TB
	ca *ca.CA
}

// Option configures NewCA.
type Option func(*options)

type options struct{ cfg ca.Config }

// WithTrustDomain sets the trust domain; if not given, DefaultTrustDomain.
func WithTrustDomain(name string) Option {
	return func(o *options) { o.cfg.TrustDomain = spiffeid.RequireTrustDomainFromString(name) }
}

// WithLeafTTL sets the lifetime of issued certificates; if not given, 1h.
func WithLeafTTL(d time.Duration) Option {
	return func(o *options) { o.cfg.LeafTTL = d }
}

// WithClock sets the CA's clock, which dates what it issues; if not given,
// time.Now. A clock in the past issues expired certificates.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.cfg.Now = now }
}

// NewCA returns a new CA with a fresh root.
func NewCA(t testing.TB, opts ...Option) *CA {
	t.Helper()
	o := options{cfg: ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString(DefaultTrustDomain), LeafTTL: time.Hour}}
	for _, opt := range opts {
		opt(&o)
	}
	c, err := ca.Init(o.cfg)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	return &CA{TrustDomain: c.TrustDomain(), t: t, ca: c}
}

// ID returns the SPIFFE ID of the service name.
func (c *CA) ID(name string) spiffeid.ID {
	c.t.Helper()
	id, err := c.ca.ID(name)
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	return id
}

// SVID issues a certificate for the service name with a fresh key.
func (c *CA) SVID(name string) *x509svid.SVID {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	return &x509svid.SVID{ID: c.ID(name), Certificates: c.Issue(key.Public(), name), PrivateKey: key}
}

// Issue issues a certificate chain for pub and the service name.
func (c *CA) Issue(pub crypto.PublicKey, name string) []*x509.Certificate {
	c.t.Helper()
	chain, err := c.ca.Issue(pub, name)
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	return chain
}

// Source returns a static source with a new certificate for the service
// name and the current bundle.
func (c *CA) Source(name string) *pki.StaticSource {
	c.t.Helper()
	return pki.NewStaticSource(c.SVID(name), c.Bundle())
}

// Bundle returns the current trust bundle.
func (c *CA) Bundle() *x509bundle.Bundle {
	c.t.Helper()
	b, err := c.ca.Bundle()
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	return b
}

// GetX509BundleForTrustDomain implements x509bundle.Source with the current
// bundle.
func (c *CA) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b, err := c.ca.Bundle()
	if err != nil {
		return nil, err
	}
	return b.GetX509BundleForTrustDomain(td)
}

// Issuer returns an in-process pki.Issuer (and pki.BundleFetcher) for the
// service name.
func (c *CA) Issuer(name string) pki.Issuer {
	return c.ca.Issuer(name)
}

// RotatingSource returns a source for the service name that renews from the
// CA; it is closed when the test ends.
func (c *CA) RotatingSource(name string, opts ...pki.Option) *pki.RotatingSource {
	c.t.Helper()
	s, err := pki.NewRotatingSource(context.Background(), c.Issuer(name), opts...)
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

// Rotate publishes a new root that signs from activateAt; see ca.CA.Rotate.
func (c *CA) Rotate(activateAt time.Time) *x509.Certificate {
	c.t.Helper()
	root, err := c.ca.Rotate(activateAt)
	if err != nil {
		c.t.Fatalf("pkitest: %v", err)
	}
	return root
}

// Interface guard.
var _ x509bundle.Source = (*CA)(nil)
