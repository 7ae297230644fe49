package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Names of the files IssueFiles writes; pki.NewFileSource reads them.
const (
	CertFile   = "cert.pem"   // the certificate chain, leaf first
	KeyFile    = "key.pem"    // the private key, PKCS #8, mode 0600
	BundleFile = "bundle.pem" // the trust bundle's roots
)

// IssueFiles issues a certificate for the service name with a fresh ECDSA
// P-256 key and writes CertFile, KeyFile and BundleFile to dir (created
// 0700 if missing), each atomically. It returns what it wrote.
func (c *CA) IssueFiles(name, dir string) (*x509svid.SVID, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate key: %w", err)
	}
	chain, err := c.Issue(key.Public(), name)
	if err != nil {
		return nil, err
	}
	id, err := c.ID(name)
	if err != nil {
		return nil, err
	}
	svid := &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	bundle, err := c.Bundle()
	if err != nil {
		return nil, err
	}
	bundlePEM, err := bundle.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{KeyFile, keyPEM, 0o600}, {CertFile, certPEM, 0o644}, {BundleFile, bundlePEM, 0o644}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return nil, fmt.Errorf("ca: write %s: %w", f.name, err)
		}
	}
	return svid, nil
}
