// Package ca is Gatehouse's built-in certificate authority for service
// identities, the issuer behind package pki.
//
// A CA has one or more self-signed ECDSA P-256 roots for one SPIFFE trust
// domain. Each root is name-constrained (RFC 5280 §4.2.1.10) to URI SANs in
// exactly its trust domain and may sign only end-entity certificates
// (path length zero). The CA issues short-lived X509-SVIDs (SPIFFE X509-SVID
// §4, §5): one URI SAN spiffe://<trust-domain>/svc/<name>, key usage digital
// signature, extended key usage server and client authentication, a 128-bit
// serial from crypto/rand, from a PKCS #10 request (RFC 2986) whose
// signature is checked, or from a public key.
//
// Rotation overlaps: Rotate publishes a new root in the bundle at once and
// lets it sign from a later time; the old root stays in the bundle until
// every certificate it signed has expired. Bundle therefore holds one root,
// or two during a rotation.
//
// State lives in one file, ca.json, in the CA's directory; the roots'
// private keys in it are sealed with the keyring (AES-256-GCM). A CA notices
// when another process (`gatehouse ca rotate`) changed the file and reloads
// it. A CA without a directory lives in memory, for tests.
package ca

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// Defaults.
const (
	DefaultLeafTTL = 24 * time.Hour
	DefaultRootTTL = 365 * 24 * time.Hour
)

// Errors callers branch on.
var (
	ErrNotInitialized = errors.New("ca: not initialized (run `gatehouse ca init`)")
	ErrExists         = errors.New("ca: already initialized")
	// ErrInvalidRequest is wrapped by every error about what a caller asked
	// for: a malformed or badly signed request, a key or name not allowed.
	ErrInvalidRequest = errors.New("ca: invalid certificate request")
	// ErrIDNotAllowed reports a request naming a SPIFFE ID other than the
	// one the caller may have. It wraps ErrInvalidRequest.
	ErrIDNotAllowed    = fmt.Errorf("%w: SPIFFE ID not allowed", ErrInvalidRequest)
	ErrRotationPending = errors.New("ca: a rotation is pending: the newest root does not sign yet")
	ErrNoActiveRoot    = errors.New("ca: no root can sign now (all expired? rotate)")
)

// Config configures a CA.
type Config struct {
	// Dir holds the CA's state file. If empty, the CA lives in memory.
	Dir string
	// TrustDomain of the certificates. Required by Init; Open reads it
	// from Dir and, if set, checks it.
	TrustDomain spiffeid.TrustDomain
	// Keyring seals the roots' private keys at rest. Required with Dir.
	Keyring *keyring.Keyring
	// LeafTTL is the lifetime of issued certificates. Init stores it with
	// the CA, and if zero stores DefaultLeafTTL (24h). Open uses the stored
	// value if zero, and refuses a longer one: a replaced root leaves the
	// bundle LeafTTL after its successor signs.
	LeafTTL time.Duration
	// RootTTL is the lifetime of new roots. If zero, DefaultRootTTL (a year).
	RootTTL time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// CA issues service certificates. It is safe for concurrent use.
type CA struct {
	cfg     Config
	td      spiffeid.TrustDomain
	leafTTL time.Duration

	mu    sync.Mutex
	roots []*root // in activation order
	stamp stamp   // of the state file, when last read or written
}

// Init creates a CA with its first root, which signs at once. With a Dir
// it fails with ErrExists if a CA is already there.
func Init(cfg Config) (*CA, error) {
	if err := checkTrustDomain(cfg.TrustDomain); err != nil {
		return nil, err
	}
	if cfg.Dir != "" && cfg.Keyring == nil {
		return nil, errors.New("ca: Config needs a Keyring to seal keys at rest")
	}
	c := newCA(cfg, cfg.TrustDomain, cfg.LeafTTL)
	if c.leafTTL == 0 {
		c.leafTTL = DefaultLeafTTL
	}
	if cfg.Dir != "" {
		if _, err := c.statFile(); err == nil {
			return nil, fmt.Errorf("%w in %s", ErrExists, cfg.Dir)
		}
	}
	now := c.cfg.Now()
	r, err := newRoot(c.td, now, now, c.cfg.RootTTL)
	if err != nil {
		return nil, err
	}
	c.roots = []*root{r}
	if err := c.save(); err != nil {
		return nil, err
	}
	return c, nil
}

// Open loads the CA in cfg.Dir; ErrNotInitialized if there is none.
func Open(cfg Config) (*CA, error) {
	if cfg.Dir == "" || cfg.Keyring == nil {
		return nil, errors.New("ca: Open needs Dir and Keyring")
	}
	st, stamp, err := readState(cfg.Dir)
	if err != nil {
		return nil, err
	}
	td, err := spiffeid.TrustDomainFromString(st.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: state file: %w", err)
	}
	if !cfg.TrustDomain.IsZero() && cfg.TrustDomain != td {
		return nil, fmt.Errorf("ca: %s holds trust domain %q, not %q", cfg.Dir, td.Name(), cfg.TrustDomain.Name())
	}
	stored := time.Duration(st.LeafTTLSeconds) * time.Second
	if cfg.LeafTTL > stored {
		return nil, fmt.Errorf("ca: leaf TTL %s exceeds the CA's %s, set at init", cfg.LeafTTL, stored)
	}
	leafTTL := cfg.LeafTTL
	if leafTTL == 0 {
		leafTTL = stored
	}
	c := newCA(cfg, td, leafTTL)
	if err := c.apply(st, stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func newCA(cfg Config, td spiffeid.TrustDomain, leafTTL time.Duration) *CA {
	if cfg.RootTTL == 0 {
		cfg.RootTTL = DefaultRootTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CA{cfg: cfg, td: td, leafTTL: leafTTL}
}

// checkTrustDomain refuses names the root's URI name constraint cannot
// express: an IP address is not a host name to constrain.
func checkTrustDomain(td spiffeid.TrustDomain) error {
	if td.IsZero() {
		return errors.New("ca: a trust domain is required")
	}
	if net.ParseIP(td.Name()) != nil {
		return fmt.Errorf("ca: trust domain %q is an IP address; use a DNS-style name", td.Name())
	}
	return nil
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// LeafTTL returns the lifetime of the certificates the CA issues.
func (c *CA) LeafTTL() time.Duration { return c.leafTTL }
