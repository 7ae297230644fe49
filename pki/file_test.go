package pki_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// certFiles are the three files of a FileSource in a test's folder.
type certFiles struct {
	t                 *testing.T
	cert, key, bundle string
}

func newCertFiles(t *testing.T) *certFiles {
	dir := t.TempDir()
	return &certFiles{t: t, cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"),
		bundle: filepath.Join(dir, "bundle.pem")}
}

// write replaces file with data atomically, as `gatehouse ca issue` does,
// and moves its modification time on, so the change shows on any file
// system whatever its timestamp resolution.
func (f *certFiles) write(file string, data []byte) {
	f.t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	next := time.Now().Add(time.Hour)
	if info, err := os.Stat(file); err == nil && !info.ModTime().Before(next) {
		next = info.ModTime().Add(time.Second)
	}
	if err := os.Chtimes(tmp, next, next); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		f.t.Fatal(err)
	}
}

// pair returns the PEM certificate and key of svid.
func (f *certFiles) pair(svid *x509svid.SVID) (cert, key []byte) {
	f.t.Helper()
	cert, key, err := svid.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	return cert, key
}

func (f *certFiles) writeBundle(ca *pkitest.CA) {
	f.t.Helper()
	pem, err := ca.Bundle().Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(f.bundle, pem)
}

func servedLeaf(t *testing.T, src *pki.FileSource) *x509.Certificate {
	t.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return svid.Certificates[0]
}

// TestFileSourceReload renews the files of a FileSource step by step, the
// way a cron job running `gatehouse ca issue` does and the ways it can go
// wrong, and checks which certificate is served after each step.
func TestFileSourceReload(t *testing.T) {
	ca := pkitest.NewCA(t)
	f := newCertFiles(t)
	first, second, third := ca.SVID("orders"), ca.SVID("orders"), ca.SVID("orders")
	cert1, key1 := f.pair(first)
	f.write(f.cert, cert1)
	f.write(f.key, key1)
	f.writeBundle(ca)
	src, err := pki.NewFileSource(f.cert, f.key, f.bundle, pki.WithReloadInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2 := f.pair(second)
	cert3, key3 := f.pair(third)
	other := pkitest.NewCA(t) // another CA, and another service
	foreignCert, foreignKey := f.pair(other.SVID("orders"))
	billingCert, billingKey := f.pair(ca.SVID("billing"))
	steps := []struct {
		name    string
		change  func()
		wantErr bool
		serves  *x509svid.SVID
	}{
		{"nothing changed", func() {}, false, first},
		{"certificate written before its key", func() { f.write(f.cert, cert2) }, true, first},
		{"then its key", func() { f.write(f.key, key2) }, false, second},
		{"a half-written certificate", func() { f.write(f.cert, cert3[:len(cert3)/2]) }, true, second},
		{"the whole certificate, with its key", func() { f.write(f.cert, cert3); f.write(f.key, key3) }, false, third},
		{"a certificate of another service", func() { f.write(f.cert, billingCert); f.write(f.key, billingKey) }, true, third},
		{"a certificate of another CA", func() { f.write(f.cert, foreignCert); f.write(f.key, foreignKey) }, true, third},
		{"a missing key", func() { os.Remove(f.key) }, true, third},
		{"the renewed pair again", func() { f.write(f.cert, cert2); f.write(f.key, key2) }, false, second},
	}
	for _, s := range steps {
		s.change()
		err := src.Reload()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Reload got error %v, want error %v", s.name, err, s.wantErr)
		}
		if got := servedLeaf(t, src); !got.Equal(s.serves.Certificates[0]) {
			t.Fatalf("%s: serves serial %x, want %x", s.name, got.SerialNumber, s.serves.Certificates[0].SerialNumber)
		}
	}
}

// TestFileSourceReloadsByItself: without Reload, a handshake's request for
// the certificate picks up new files once the interval has passed.
func TestFileSourceReloadsByItself(t *testing.T) {
	ca := pkitest.NewCA(t)
	f := newCertFiles(t)
	first, second := ca.SVID("orders"), ca.SVID("orders")
	cert1, key1 := f.pair(first)
	f.write(f.cert, cert1)
	f.write(f.key, key1)
	f.writeBundle(ca)
	src, err := pki.NewFileSource(f.cert, f.key, f.bundle, pki.WithReloadInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2 := f.pair(second)
	f.write(f.key, key2)
	f.write(f.cert, cert2)
	time.Sleep(time.Millisecond) // more than the interval
	if got := servedLeaf(t, src); !got.Equal(second.Certificates[0]) {
		t.Fatalf("got serial %x, want the renewed certificate %x", got.SerialNumber, second.Certificates[0].SerialNumber)
	}
	// A new bundle (a CA rotation published a second root) comes with it.
	ca.Rotate(time.Now().Add(time.Hour))
	f.writeBundle(ca)
	time.Sleep(time.Millisecond)
	b, err := src.GetX509BundleForTrustDomain(ca.TrustDomain)
	if err != nil || len(b.X509Authorities()) != 2 {
		t.Fatalf("got bundle %v, %v, want both roots", b, err)
	}
}

func TestNewFileSourceRefuses(t *testing.T) {
	ca := pkitest.NewCA(t)
	tests := []struct {
		name  string
		setUp func(f *certFiles)
	}{
		{"no files", func(*certFiles) {}},
		{"a key that is not the certificate's", func(f *certFiles) {
			cert, _ := f.pair(ca.SVID("orders"))
			_, key := f.pair(ca.SVID("orders"))
			f.write(f.cert, cert)
			f.write(f.key, key)
			f.writeBundle(ca)
		}},
		{"a bundle of another CA", func(f *certFiles) {
			cert, key := f.pair(ca.SVID("orders"))
			f.write(f.cert, cert)
			f.write(f.key, key)
			f.writeBundle(pkitest.NewCA(t))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCertFiles(t)
			tt.setUp(f)
			if _, err := pki.NewFileSource(f.cert, f.key, f.bundle); err == nil {
				t.Fatal("got nil error, want the files refused")
			}
		})
	}
}
