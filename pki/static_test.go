package pki_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

func TestLoadSource(t *testing.T) {
	ca := pkitest.NewCA(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM, err := ca.SVID("orders").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bundlePEM, err := ca.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, bundle := write("cert.pem", certPEM), write("key.pem", keyPEM), write("bundle.pem", bundlePEM)

	src, err := pki.LoadSource(cert, key, bundle)
	if err != nil {
		t.Fatalf("LoadSource: %v", err)
	}
	svid, _ := src.GetX509SVID()
	if svid.ID != ca.ID("orders") {
		t.Fatalf("got ID %q, want %q", svid.ID, ca.ID("orders"))
	}
	if _, err := src.GetX509BundleForTrustDomain(ca.TrustDomain); err != nil {
		t.Fatalf("bundle for own trust domain: %v", err)
	}
	other := pkitest.NewCA(t, pkitest.WithTrustDomain("other.org"))
	if _, err := src.GetX509BundleForTrustDomain(other.TrustDomain); err == nil {
		t.Fatalf("got a bundle for another trust domain")
	}

	otherBundle, _ := pkitest.NewCA(t).Bundle().Marshal()
	if _, err := pki.LoadSource(cert, key, write("other.pem", otherBundle)); err == nil {
		t.Fatalf("got no error for a certificate that does not verify against the bundle")
	}
	_, otherKey, _ := ca.SVID("orders").Marshal()
	if _, err := pki.LoadSource(cert, write("otherkey.pem", otherKey), bundle); err == nil {
		t.Fatalf("got no error for a key that does not match the certificate")
	}
}
