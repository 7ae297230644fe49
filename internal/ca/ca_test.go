package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestInitOpenAndSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	kr := keyring.Generate()
	c, err := Init(Config{Dir: dir, TrustDomain: td, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(Config{Dir: dir, TrustDomain: td, Keyring: kr}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: got %v, want ErrExists", err)
	}
	if _, err := Open(Config{Dir: t.TempDir(), Keyring: kr}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Open of an empty folder: got %v, want ErrNotInitialized", err)
	}
	fi, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got state file %v, %v, want mode 0600", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, stateFile))
	priv, _ := x509.MarshalPKCS8PrivateKey(c.roots[0].key)
	for _, enc := range [][]byte{priv, []byte(base64.StdEncoding.EncodeToString(priv)), c.roots[0].key.D.Bytes()} {
		if bytes.Contains(data, enc) {
			t.Fatalf("the root's private key is in the state file in clear")
		}
	}

	reopened, err := Open(Config{Dir: dir, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if reopened.TrustDomain() != td || reopened.LeafTTL() != DefaultLeafTTL {
		t.Fatalf("got %s, %v, want %s, %v", reopened.TrustDomain(), reopened.LeafTTL(), td, DefaultLeafTTL)
	}
	if !reopened.roots[0].key.Equal(c.roots[0].key) {
		t.Fatalf("the reopened root key differs")
	}
	if _, err := Open(Config{Dir: dir, Keyring: keyring.Generate()}); !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("Open with another master key: got %v, want keyring.ErrOpen", err)
	}
	if _, err := Open(Config{Dir: dir, Keyring: kr, LeafTTL: 48 * time.Hour}); err == nil {
		t.Fatalf("Open with a longer leaf TTL than at init: got no error")
	}
	if _, err := Open(Config{Dir: dir, Keyring: kr, TrustDomain: spiffeid.RequireTrustDomainFromString("other.org")}); err == nil {
		t.Fatalf("Open with another trust domain: got no error")
	}
	if _, err := Init(Config{TrustDomain: spiffeid.RequireTrustDomainFromString("10.0.0.1")}); err == nil {
		t.Fatalf("Init with an IP address as trust domain: got no error")
	}
}

func TestRootCertificate(t *testing.T) {
	c, err := Init(Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	r := c.roots[0].cert
	if err := r.CheckSignatureFrom(r); err != nil {
		t.Fatalf("root is not self-signed: %v", err)
	}
	if !r.IsCA || !r.MaxPathLenZero || r.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("got IsCA %v, MaxPathLenZero %v, KeyUsage %v, want a CA for end entities only", r.IsCA, r.MaxPathLenZero, r.KeyUsage)
	}
	if pub, ok := r.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("got root key %T, want ECDSA P-256", r.PublicKey)
	}
	if !slices.Equal(r.PermittedURIDomains, []string{"example.org"}) || !slices.Equal(r.ExcludedURIDomains, []string{".example.org"}) ||
		!r.PermittedDNSDomainsCritical {
		t.Fatalf("got URI constraints %q, %q, critical %v, want example.org only, critical",
			r.PermittedURIDomains, r.ExcludedURIDomains, r.PermittedDNSDomainsCritical)
	}
	if len(r.URIs) != 1 || r.URIs[0].String() != "spiffe://example.org" {
		t.Fatalf("got root URIs %v, want spiffe://example.org", r.URIs)
	}
}

func TestLeafCertificate(t *testing.T) {
	c, err := Init(Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	before := time.Now()
	chain, err := c.Issue(key.Public(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if len(chain) != 1 || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://example.org/svc/orders" ||
		len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Fatalf("got chain of %d, URIs %v, want one certificate with only spiffe://example.org/svc/orders", len(chain), leaf.URIs)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("got IsCA %v, KeyUsage %v, ExtKeyUsage %v, want a server and client leaf", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if life := leaf.NotAfter.Sub(before); life < DefaultLeafTTL-2*time.Second || life > DefaultLeafTTL {
		t.Fatalf("got lifetime %v from now, want %v", life, DefaultLeafTTL)
	}
	if !leaf.NotBefore.Before(before) {
		t.Fatalf("got NotBefore %v, want slightly in the past", leaf.NotBefore)
	}
	chain2, _ := c.Issue(key.Public(), "orders")
	if leaf.SerialNumber.Cmp(chain2[0].SerialNumber) == 0 || leaf.SerialNumber.BitLen() < 64 {
		t.Fatalf("got serials %v and %v, want distinct random 128-bit serials", leaf.SerialNumber, chain2[0].SerialNumber)
	}
	b, _ := c.Bundle()
	id, _, err := x509svid.Verify(chain, b)
	if err != nil || id.String() != "spiffe://example.org/svc/orders" {
		t.Fatalf("go-spiffe verification: got %v, %v", id, err)
	}
	for _, bad := range []any{ed25519.PublicKey(make([]byte, 32)), &newKeyP384(t).PublicKey, &newKeyRSA(t).PublicKey} {
		if _, err := c.Issue(bad, "orders"); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Issue for a %T key: got %v, want ErrInvalidRequest", bad, err)
		}
	}
	if _, err := c.Issue(key.Public(), "a/b"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Issue for name a/b: got %v, want ErrInvalidRequest", err)
	}
}

func newKeyP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestNameConstraints signs leaves with the root directly, bypassing Issue,
// to show that the root itself limits what it can vouch for.
func TestNameConstraints(t *testing.T) {
	c, err := Init(Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	r := c.roots[0]
	roots := x509.NewCertPool()
	roots.AddCert(r.cert)
	for _, tt := range []struct {
		uri string
		ok  bool
	}{
		{"spiffe://example.org/svc/orders", true},
		{"spiffe://other.org/svc/orders", false},
		{"spiffe://evil.example.org/svc/orders", false},
		{"spiffe://example.org.evil/svc/orders", false},
	} {
		u, _ := url.Parse(tt.uri)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), URIs: []*url.URL{u},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, newKey(t).Public(), r.key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if (err == nil) != tt.ok {
			t.Errorf("%s: got verify error %v, want ok %v", tt.uri, err, tt.ok)
		}
		if !tt.ok && err != nil && !strings.Contains(err.Error(), "constraint") {
			t.Errorf("%s: got %v, want a name constraint violation", tt.uri, err)
		}
	}
}

func csr(t *testing.T, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignCSR(t *testing.T) {
	c, err := Init(Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	uri := func(s string) []*url.URL { u, _ := url.Parse(s); return []*url.URL{u} }
	tampered := csr(t, key, &x509.CertificateRequest{})
	tampered[len(tampered)-3] ^= 0xff
	tests := []struct {
		name    string
		der     []byte
		service string
		want    error // nil: issued
	}{
		{"no SAN", csr(t, key, &x509.CertificateRequest{}), "orders", nil},
		{"its own ID", csr(t, key, &x509.CertificateRequest{URIs: uri("spiffe://example.org/svc/orders")}), "orders", nil},
		{"subject is ignored", csr(t, key, &x509.CertificateRequest{Subject: pkixName("admin")}), "orders", nil},
		{"another service's ID", csr(t, key, &x509.CertificateRequest{URIs: uri("spiffe://example.org/svc/gateway")}), "orders", ErrIDNotAllowed},
		{"another trust domain", csr(t, key, &x509.CertificateRequest{URIs: uri("spiffe://other.org/svc/orders")}), "orders", ErrIDNotAllowed},
		{"not a SPIFFE ID", csr(t, key, &x509.CertificateRequest{URIs: uri("https://example.org/svc/orders")}), "orders", ErrIDNotAllowed},
		{"two URIs", csr(t, key, &x509.CertificateRequest{URIs: append(uri("spiffe://example.org/svc/orders"), uri("spiffe://example.org/svc/x")...)}), "orders", ErrIDNotAllowed},
		{"DNS SAN", csr(t, key, &x509.CertificateRequest{DNSNames: []string{"orders.internal"}}), "orders", ErrInvalidRequest},
		{"email SAN", csr(t, key, &x509.CertificateRequest{EmailAddresses: []string{"a@example.org"}}), "orders", ErrInvalidRequest},
		{"bad signature", tampered, "orders", ErrInvalidRequest},
		{"garbage", []byte("not a CSR"), "orders", ErrInvalidRequest},
		{"empty", nil, "orders", ErrInvalidRequest},
		{"RSA key", csr(t, newKeyRSA(t), &x509.CertificateRequest{}), "orders", ErrInvalidRequest},
		{"P-384 key", csr(t, newKeyP384(t), &x509.CertificateRequest{}), "orders", ErrInvalidRequest},
		{"bad service name", csr(t, key, &x509.CertificateRequest{}), "../gateway", ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, err := c.SignCSR(tt.der, tt.service)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want a certificate", err)
				}
				if got := chain[0].URIs[0].String(); got != "spiffe://example.org/svc/orders" {
					t.Fatalf("got %q, want spiffe://example.org/svc/orders", got)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRotationPhases(t *testing.T) {
	dir, kr := t.TempDir(), keyring.Generate()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	t0 := clk.Now()
	const leafTTL = time.Hour
	c, err := Init(Config{Dir: dir, TrustDomain: td, Keyring: kr, LeafTTL: leafTTL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Another process, as the authorization server next to `gatehouse ca rotate`.
	other, err := Open(Config{Dir: dir, Keyring: kr, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	old := c.roots[0].cert
	signedBy := func(ca *CA) *x509.Certificate {
		t.Helper()
		chain, err := ca.Issue(newKey(t).Public(), "orders")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ca.roots {
			if chain[0].CheckSignatureFrom(r.cert) == nil {
				return r.cert
			}
		}
		t.Fatalf("no root signed the certificate")
		return nil
	}
	bundle := func(ca *CA) []*x509.Certificate {
		t.Helper()
		b, err := ca.Bundle()
		if err != nil {
			t.Fatal(err)
		}
		return b.X509Authorities()
	}

	next, err := c.Rotate(t0.Add(10 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(t0.Add(20 * time.Minute)); !errors.Is(err, ErrRotationPending) {
		t.Fatalf("second rotation while one is pending: got %v, want ErrRotationPending", err)
	}
	steps := []struct {
		at     time.Duration
		signer *x509.Certificate
		bundle []*x509.Certificate
	}{
		{0, old, []*x509.Certificate{old, next}},                                       // published before it signs
		{10 * time.Minute, next, []*x509.Certificate{old, next}},                       // signs; old still trusted
		{10*time.Minute + leafTTL - time.Second, next, []*x509.Certificate{old, next}}, // old leaves may live
		{10*time.Minute + leafTTL, next, []*x509.Certificate{next}},                    // all old leaves expired
	}
	for _, s := range steps {
		clk.Set(t0.Add(s.at))
		for name, ca := range map[string]*CA{"rotating process": c, "other process": other} {
			if got := signedBy(ca); !got.Equal(s.signer) {
				t.Errorf("at +%v, %s: signed by the wrong root", s.at, name)
			}
			if got := bundle(ca); !slices.EqualFunc(got, s.bundle, (*x509.Certificate).Equal) {
				t.Errorf("at +%v, %s: got %d roots in the bundle, want %d", s.at, name, len(got), len(s.bundle))
			}
		}
	}
	if _, err := c.Rotate(time.Time{}); err != nil {
		t.Fatalf("a later rotation: %v", err)
	}
	if len(c.roots) != 2 {
		t.Fatalf("got %d roots kept after the old one retired, want 2", len(c.roots))
	}
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

// FuzzSignCSR feeds arbitrary bytes to the request parser an issuance
// endpoint exposes: it must refuse them with ErrInvalidRequest, never panic.
func FuzzSignCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	seq, _ := asn1.Marshal([]any{1, "x"})
	f.Add(seq)
	c, err := Init(Config{TrustDomain: td})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		chain, err := c.SignCSR(der, "orders")
		if err != nil && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("got %v, want ErrInvalidRequest or a certificate", err)
		}
		if err == nil && chain[0].URIs[0].String() != "spiffe://example.org/svc/orders" {
			t.Fatalf("issued %v", chain[0].URIs)
		}
	})
}

// TestIssuedAt: IssuedAt undoes the backdating of NotBefore for short and
// long lifetimes, so a certificate can be compared with the instant a
// client was disabled.
func TestIssuedAt(t *testing.T) {
	for _, ttl := range []time.Duration{3 * time.Second, 5 * time.Minute, 10 * time.Minute, time.Hour, DefaultLeafTTL} {
		t.Run(ttl.String(), func(t *testing.T) {
			at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
			clk := &clock{t: at}
			c, err := Init(Config{TrustDomain: td, LeafTTL: ttl, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			chain, err := c.Issue(newKey(t).Public(), "orders")
			if err != nil {
				t.Fatal(err)
			}
			if !chain[0].NotBefore.Before(at) {
				t.Fatalf("got NotBefore %v, want backdated before %v", chain[0].NotBefore, at)
			}
			// X.509 has whole seconds: up to a second early, never late.
			if got := IssuedAt(chain[0]); got.After(at) || got.Before(at.Add(-time.Second)) {
				t.Errorf("got IssuedAt %v, want %v or up to a second before", got, at)
			}
		})
	}
}
