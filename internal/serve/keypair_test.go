package serve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate and PEM key.
func selfSigned(t *testing.T, serial int64) (cert, key []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "auth.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"auth.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestKeyPairReload: a renewed pair is served once both files are in
// place; a certificate without its key leaves the old pair in service.
func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	step := 0
	write := func(file string, data []byte) {
		step++
		if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		mtime := time.Now().Add(time.Duration(step) * time.Minute) // visible at any timestamp resolution
		os.Chtimes(file+".tmp", mtime, mtime)
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	c1, k1 := selfSigned(t, 1)
	c2, k2 := selfSigned(t, 2)
	write(certFile, c1)
	write(keyFile, k1)
	kp, err := LoadKeyPair(certFile, keyFile, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		time.Sleep(time.Millisecond) // more than the interval
		c, err := kp.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	for _, s := range []struct {
		name   string
		change func()
		want   int64
	}{
		{"loaded", func() {}, 1},
		{"certificate before its key", func() { write(certFile, c2) }, 1},
		{"then its key", func() { write(keyFile, k2) }, 2},
		{"a broken certificate", func() { write(certFile, c1[:20]) }, 2},
	} {
		s.change()
		if got := serial(); got != s.want {
			t.Fatalf("%s: serves serial %d, want %d", s.name, got, s.want)
		}
	}
}
