package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultBundleRefresh is how often a RotatingSource fetches the trust
// bundle between renewals unless WithBundleRefresh says otherwise.
const DefaultBundleRefresh = 5 * time.Minute

// attemptTimeout bounds one call to the Issuer or the BundleFetcher from the
// background loop.
const attemptTimeout = 30 * time.Second

// RotatingSource holds a certificate from an Issuer and replaces it, with a
// fresh ECDSA P-256 key, when two thirds of its lifetime have passed, and
// keeps the trust bundle current: from each issuance, and between
// issuances from a BundleFetcher. Used with ServerConfig or ClientConfig,
// each new handshake gets the current certificate and bundle; established
// connections are not disturbed. A failed renewal is retried, and the
// current certificate is served until it is replaced.
//
// It implements x509svid.Source and x509bundle.Source and is safe for
// concurrent use. Close stops it.
type RotatingSource struct {
	issuer  Issuer
	fetcher BundleFetcher // nil: the bundle comes with issuances only
	every   time.Duration
	logger  *slog.Logger // nil: silent

	mu     sync.RWMutex
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle

	cancel context.CancelFunc
	done   chan struct{}
}

type bundleRefresh struct {
	fetcher BundleFetcher
	every   time.Duration
}

// WithBundleRefresh makes NewRotatingSource fetch the trust bundle from f
// every interval between renewals. Without it, a source whose Issuer also
// implements BundleFetcher asks the Issuer every DefaultBundleRefresh. A nil
// f keeps that default fetcher; a zero interval means DefaultBundleRefresh.
// A CA rotation must publish a new root at least one interval before the
// root signs (docs/mtls.md).
func WithBundleRefresh(f BundleFetcher, interval time.Duration) Option {
	return func(o *options) { o.bundleRefresh = bundleRefresh{fetcher: f, every: interval} }
}

// NewRotatingSource gets a first certificate (and bundle) from iss and
// starts renewing it in the background. ctx bounds the first issuance only;
// the source runs until Close. It fails if the first certificate cannot be
// had, or if neither the Issuer nor a BundleFetcher provides a bundle.
func NewRotatingSource(ctx context.Context, iss Issuer, opts ...Option) (*RotatingSource, error) {
	o := newOptions(opts)
	s := &RotatingSource{issuer: iss, fetcher: o.bundleRefresh.fetcher, every: o.bundleRefresh.every,
		logger: o.logger, done: make(chan struct{})}
	if s.fetcher == nil {
		s.fetcher, _ = iss.(BundleFetcher)
	}
	if s.every <= 0 {
		s.every = DefaultBundleRefresh
	}
	if err := s.renew(ctx); err != nil {
		return nil, err
	}
	if s.bundle == nil {
		if err := s.refreshBundle(ctx); err != nil {
			return nil, err
		}
		if _, _, err := x509svid.Verify(s.svid.Certificates, s.bundle); err != nil {
			return nil, fmt.Errorf("pki: issued certificate does not verify against the trust bundle: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.run(runCtx)
	return s, nil
}

// GetX509SVID returns the current certificate. It implements
// x509svid.Source. The result is shared: do not modify it.
func (s *RotatingSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle if it is td's. It
// implements x509bundle.Source. The result is shared: do not modify it.
func (s *RotatingSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bundleFor(s.bundle, td)
}

// Close stops the renewals and waits for the background loop to end. The
// source goes on serving its last certificate and bundle.
func (s *RotatingSource) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run renews the certificate and refreshes the bundle until ctx is done.
func (s *RotatingSource) run(ctx context.Context) {
	defer close(s.done)
	renewAt := s.renewAt()
	bundleAt := time.Now().Add(s.every)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := renewAt
		if s.fetcher != nil && bundleAt.Before(next) {
			next = bundleAt
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(renewAt) {
			renewAt = s.renewInBackground(ctx, now)
		}
		if s.fetcher != nil && !now.Before(bundleAt) {
			bundleAt = now.Add(s.every)
			if err := attempt(ctx, s.refreshBundle); err != nil {
				bundleAt = now.Add(min(s.every, 10*time.Second))
				s.log(slog.LevelWarn, "pki: trust bundle refresh failed", "err", err.Error())
			}
		}
	}
}

// renewInBackground renews once and returns when to renew next.
func (s *RotatingSource) renewInBackground(ctx context.Context, now time.Time) time.Time {
	if err := attempt(ctx, s.renew); err != nil {
		retry := s.retryDelay()
		s.log(slog.LevelWarn, "pki: certificate renewal failed", "err", err.Error(), "retry_in", retry.String())
		return now.Add(retry)
	}
	svid, _ := s.GetX509SVID()
	s.log(slog.LevelInfo, "pki: certificate renewed", "spiffe_id", svid.ID.String(),
		"not_after", svid.Certificates[0].NotAfter)
	return s.renewAt()
}

func attempt(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	return f(ctx)
}

// renewAt is two thirds into the current certificate's lifetime.
func (s *RotatingSource) renewAt() time.Time {
	leaf := s.leaf()
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
}

// retryDelay is a twentieth of the certificate's lifetime, between 100ms
// and 30s.
func (s *RotatingSource) retryDelay() time.Duration {
	leaf := s.leaf()
	return min(max(leaf.NotAfter.Sub(leaf.NotBefore)/20, 100*time.Millisecond), 30*time.Second)
}

func (s *RotatingSource) leaf() *x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid.Certificates[0]
}

// renew gets a certificate for a fresh key and installs it, with the bundle
// that came with it, once it verifies against that bundle.
func (s *RotatingSource) renew(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return fmt.Errorf("pki: certificate request: %w", err)
	}
	chain, bundle, err := s.issue(ctx, csr)
	if err != nil {
		return fmt.Errorf("pki: issue certificate: %w", err)
	}
	svid, err := newSVID(chain, key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.svid != nil && svid.ID != s.svid.ID {
		return fmt.Errorf("pki: issuer returned a certificate for %s, want %s", svid.ID, s.svid.ID)
	}
	if bundle == nil {
		bundle = s.bundle
	}
	if bundle != nil {
		if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
			return fmt.Errorf("pki: issued certificate does not verify against the trust bundle: %w", err)
		}
	}
	s.svid, s.bundle = svid, bundle
	return nil
}

// issue asks the Issuer for a certificate: with Renew, authenticated by the
// current certificate, when the Issuer is a Renewer and there is one.
func (s *RotatingSource) issue(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	r, ok := s.issuer.(Renewer)
	s.mu.RLock()
	current, bundle := s.svid, s.bundle
	s.mu.RUnlock()
	if !ok || current == nil {
		return s.issuer.Issue(ctx, csr)
	}
	return r.Renew(ctx, csr, current, bundle)
}

// newSVID checks chain and key with go-spiffe's X509-SVID rules.
func newSVID(chain []*x509.Certificate, key *ecdsa.PrivateKey) (*x509svid.SVID, error) {
	if len(chain) == 0 {
		return nil, errors.New("pki: issuer returned no certificate")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var raw []byte
	for _, c := range chain {
		raw = append(raw, c.Raw...)
	}
	svid, err := x509svid.ParseRaw(raw, der)
	if err != nil {
		return nil, fmt.Errorf("pki: issued certificate: %w", err)
	}
	return svid, nil
}

// refreshBundle replaces the bundle with the fetcher's.
func (s *RotatingSource) refreshBundle(ctx context.Context) error {
	if s.fetcher == nil {
		return errors.New("pki: the issuer returned no trust bundle and there is no BundleFetcher")
	}
	td := s.leafID().TrustDomain()
	b, err := s.fetcher.FetchBundle(ctx, td)
	if err != nil {
		return fmt.Errorf("pki: fetch trust bundle: %w", err)
	}
	if b == nil || b.TrustDomain() != td || b.Empty() {
		return fmt.Errorf("pki: fetched trust bundle is empty or not for %s", td)
	}
	s.mu.Lock()
	s.bundle = b
	s.mu.Unlock()
	return nil
}

func (s *RotatingSource) leafID() spiffeid.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid.ID
}

func (s *RotatingSource) log(level slog.Level, msg string, args ...any) {
	if s.logger != nil {
		s.logger.Log(context.Background(), level, msg, args...)
	}
}

// Interface guards.
var (
	_ x509svid.Source   = (*RotatingSource)(nil)
	_ x509bundle.Source = (*RotatingSource)(nil)
)
