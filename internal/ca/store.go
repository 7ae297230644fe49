package ca

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// stateFile is the name of the CA's state file in its directory.
const stateFile = "ca.json"

// state is the content of the state file.
type state struct {
	TrustDomain    string      `json:"trust_domain"`
	LeafTTLSeconds int64       `json:"leaf_ttl_seconds"`
	Roots          []rootState `json:"roots"`
}

// rootState is one root at rest: its certificate and its private key
// (PKCS #8) sealed with the keyring, bound to the certificate.
type rootState struct {
	Certificate []byte    `json:"certificate"` // DER
	SealedKey   []byte    `json:"sealed_key"`
	ActiveAt    time.Time `json:"active_at"`
}

// stamp identifies one version of the state file.
type stamp struct {
	mod  time.Time
	size int64
}

func (c *CA) path() string { return filepath.Join(c.cfg.Dir, stateFile) }

func (c *CA) statFile() (stamp, error) {
	fi, err := os.Stat(c.path())
	if err != nil {
		return stamp{}, err
	}
	return stamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// sealAAD binds a sealed key to its certificate, so it cannot be moved to
// another root.
func sealAAD(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.Raw)
	return []byte("gatehouse ca root " + hex.EncodeToString(sum[:]))
}

// readState reads the state file in dir.
func readState(dir string) (*state, stamp, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, stamp{}, fmt.Errorf("%w in %s", ErrNotInitialized, dir)
	}
	if err != nil {
		return nil, stamp{}, fmt.Errorf("ca: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, stamp{}, fmt.Errorf("ca: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, stamp{}, fmt.Errorf("ca: %s: %w", path, err)
	}
	if len(st.Roots) == 0 || st.LeafTTLSeconds <= 0 {
		return nil, stamp{}, fmt.Errorf("ca: %s: no roots or no leaf TTL", path)
	}
	return &st, stamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// apply replaces the roots with those of st, opening their keys. The caller
// holds c.mu or owns c.
func (c *CA) apply(st *state, s stamp) error {
	if st.TrustDomain != c.td.Name() {
		return fmt.Errorf("ca: state file changed trust domain to %q", st.TrustDomain)
	}
	roots := make([]*root, 0, len(st.Roots))
	for i, rs := range st.Roots {
		cert, err := x509.ParseCertificate(rs.Certificate)
		if err != nil {
			return fmt.Errorf("ca: root %d: %w", i, err)
		}
		der, err := c.cfg.Keyring.Open(keyring.PurposeCAKey, rs.SealedKey, sealAAD(cert))
		if err != nil {
			return fmt.Errorf("ca: root %d key: %w", i, err)
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		key, ok := k.(*ecdsa.PrivateKey)
		if err != nil || !ok || !key.PublicKey.Equal(cert.PublicKey) {
			return fmt.Errorf("ca: root %d: key does not match its certificate", i)
		}
		roots = append(roots, &root{cert: cert, key: key, activeAt: rs.ActiveAt})
	}
	c.roots, c.stamp = roots, s
	return nil
}

// sync reloads the state file if another process changed it. The caller
// holds c.mu.
func (c *CA) sync() error {
	if c.cfg.Dir == "" {
		return nil
	}
	s, err := c.statFile()
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if s == c.stamp {
		return nil
	}
	st, s, err := readState(c.cfg.Dir)
	if err != nil {
		return err
	}
	return c.apply(st, s)
}

// save writes the state file atomically (mode 0600). The caller holds c.mu
// or owns c. A CA without Dir saves nothing.
func (c *CA) save() error {
	if c.cfg.Dir == "" {
		return nil
	}
	st := state{TrustDomain: c.td.Name(), LeafTTLSeconds: int64(c.leafTTL / time.Second)}
	for _, r := range c.roots {
		der, err := x509.MarshalPKCS8PrivateKey(r.key)
		if err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		sealed, err := c.cfg.Keyring.Seal(keyring.PurposeCAKey, der, sealAAD(r.cert))
		if err != nil {
			return err
		}
		st.Roots = append(st.Roots, rootState{Certificate: r.cert.Raw, SealedKey: sealed, ActiveAt: r.activeAt.UTC()})
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeFileAtomic(c.path(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	c.stamp, err = c.statFile()
	return err
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so readers see the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, a no-op
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
