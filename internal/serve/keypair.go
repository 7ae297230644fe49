package serve

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyPair serves a TLS certificate from a PEM certificate file and key file
// and re-reads them when they change, so a renewed certificate needs no
// restart. At most every Interval, at a handshake, it compares the files'
// modification times and sizes with those it loaded; a pair that does not
// load (a certificate written before its key) leaves the previous one in
// service until the next look. It is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	every             time.Duration

	mu     sync.Mutex
	cert   *tls.Certificate
	stamps [2]os.FileInfo
	next   time.Time
}

// LoadKeyPair loads the pair; the files are looked at again at most every
// interval (if zero, 10s).
func LoadKeyPair(certFile, keyFile string, interval time.Duration) (*KeyPair, error) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, every: interval}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.After(k.next) {
		k.next = now.Add(k.every)
		if k.changed() {
			k.load() // on failure, the loaded pair stays
		}
	}
	return k.cert, nil
}

func (k *KeyPair) changed() bool {
	for i, name := range []string{k.certFile, k.keyFile} {
		info, err := os.Stat(name)
		if err != nil {
			return false
		}
		old := k.stamps[i]
		if !os.SameFile(old, info) || old.Size() != info.Size() || !old.ModTime().Equal(info.ModTime()) {
			return true
		}
	}
	return false
}

// load reads the pair and, if it loads, serves it.
func (k *KeyPair) load() error {
	var stamps [2]os.FileInfo
	for i, name := range []string{k.certFile, k.keyFile} {
		info, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("tls key pair: %w", err)
		}
		stamps[i] = info
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.stamps = &cert, stamps
	return nil
}
