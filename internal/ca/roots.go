package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// rootBackdate is how far before its creation a root is valid, so that peers
// whose clocks lag still accept it.
const rootBackdate = time.Hour

// root is one signing root of the CA.
type root struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	activeAt time.Time // when it starts signing
}

// newRoot creates a self-signed root for td, valid for ttl from now, that
// signs from activeAt.
func newRoot(td spiffeid.TrustDomain, now, activeAt time.Time, ttl time.Duration) (*root, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{Organization: []string{"Gatehouse"},
			CommonName: "Gatehouse root CA for " + td.Name() + " " + now.UTC().Format("2006-01-02T15:04:05Z")},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-rootBackdate),
		NotAfter:              now.Add(ttl),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // end-entity certificates only, no intermediates
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// URI SANs in exactly td: the host td is permitted, its subdomains
		// (other trust domains) are excluded. Critical, per RFC 5280.
		PermittedURIDomains:         []string{td.Name()},
		ExcludedURIDomains:          []string{"." + td.Name()},
		PermittedDNSDomainsCritical: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: create root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse root: %w", err)
	}
	return &root{cert: cert, key: key, activeAt: activeAt}, nil
}

// randomSerial returns a positive 128-bit serial number from crypto/rand.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("ca: serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// signer returns the root that signs at now: the most recently activated
// one that has not expired. The caller holds c.mu.
func (c *CA) signer(now time.Time) (*root, error) {
	for i := len(c.roots) - 1; i >= 0; i-- {
		r := c.roots[i]
		if !r.activeAt.After(now) && now.Before(r.cert.NotAfter) {
			return r, nil
		}
	}
	return nil, ErrNoActiveRoot
}

// published returns the roots in the bundle at now: every unexpired root
// except those replaced more than LeafTTL ago, whose certificates have all
// expired. Roots that do not sign yet are published, so that peers trust
// them before they sign. The caller holds c.mu.
func (c *CA) published(now time.Time) []*root {
	var out []*root
	for i, r := range c.roots {
		if !now.Before(r.cert.NotAfter) {
			continue
		}
		if i+1 < len(c.roots) && !now.Before(c.roots[i+1].activeAt.Add(c.leafTTL)) {
			continue // replaced, and everything it signed has expired
		}
		out = append(out, r)
	}
	return out
}

// Bundle returns the trust bundle: the roots peers must trust now.
func (c *CA) Bundle() (*x509bundle.Bundle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sync(); err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, r := range c.published(c.cfg.Now()) {
		certs = append(certs, r.cert)
	}
	return x509bundle.FromX509Authorities(c.td, certs), nil
}

// Rotate starts a CA rotation: it creates a new root and publishes it in the
// bundle at once; the new root signs from activateAt (at once if that is not
// in the future). The current root keeps signing until then, and stays in
// the bundle until LeafTTL after that, when all it signed has expired.
// Leave peers time to refresh their bundle before activateAt (with pki's
// default, 5 minutes). It fails with ErrRotationPending while an earlier
// rotation's root does not sign yet.
func (c *CA) Rotate(activateAt time.Time) (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sync(); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	if newest := c.roots[len(c.roots)-1]; newest.activeAt.After(now) {
		return nil, ErrRotationPending
	}
	if activateAt.Before(now) {
		activateAt = now
	}
	r, err := newRoot(c.td, now, activateAt, c.cfg.RootTTL)
	if err != nil {
		return nil, err
	}
	kept := c.published(now) // drops retired roots and their keys for good
	prev := c.roots
	c.roots = append(kept, r)
	if err := c.save(); err != nil {
		c.roots = prev
		return nil, err
	}
	return r.cert, nil
}
