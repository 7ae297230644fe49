package pki

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultReloadInterval is how often a FileSource looks for changed files
// unless WithReloadInterval says otherwise.
const DefaultReloadInterval = 10 * time.Second

// FileSource serves a certificate, its key and a trust bundle from PEM
// files, such as those `gatehouse ca issue` writes, and picks up new files
// without a restart: at most every reload interval, when a certificate or
// bundle is asked for, it compares the files' size and modification time
// with those it loaded, and reloads all three if any changed. So a cron job
// that renews the files needs no signal.
//
// A new set of files is served only once it is consistent: the key matches
// the certificate, the certificate verifies against the bundle, and the
// SPIFFE ID is the one loaded first. Until then — a certificate written
// before its key, a file half written — the previous certificate and bundle
// go on serving, and the files are tried again at the next interval.
//
// It implements x509svid.Source and x509bundle.Source and is safe for
// concurrent use. It starts no goroutine and needs no Close.
type FileSource struct {
	certFile, keyFile, bundleFile string
	every                         time.Duration
	logger                        *slog.Logger // nil: silent
	now                           func() time.Time

	current atomic.Pointer[fileState]
	// mu is held by the one caller checking the files; others go on with
	// the current state.
	mu        sync.Mutex
	nextCheck atomic.Int64 // Unix nanoseconds
}

// fileState is what a FileSource loaded, and the versions of the files it
// loaded it from (certificate, key, bundle).
type fileState struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
	files  [3]os.FileInfo
}

// unchanged reports whether a and b describe the same version of a file.
func unchanged(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// WithReloadInterval makes NewFileSource look for changed files at most
// every d; zero or less means DefaultReloadInterval.
func WithReloadInterval(d time.Duration) Option {
	return func(o *options) { o.reloadEvery = d }
}

// NewFileSource loads a certificate chain (PEM, leaf first), its private
// key (PEM, PKCS #8) and the trust bundle (PEM certificates) of the
// certificate's trust domain, checks that the certificate verifies against
// the bundle now, and returns a source that reloads them when they change.
// WithLogger logs each reload and each set of files refused.
func NewFileSource(certFile, keyFile, bundleFile string, opts ...Option) (*FileSource, error) {
	o := newOptions(opts)
	s := &FileSource{certFile: certFile, keyFile: keyFile, bundleFile: bundleFile,
		every: o.reloadEvery, logger: o.logger, now: time.Now}
	if s.every <= 0 {
		s.every = DefaultReloadInterval
	}
	st, err := s.load(spiffeid.ID{})
	if err != nil {
		return nil, err
	}
	s.current.Store(st)
	s.nextCheck.Store(s.now().Add(s.every).UnixNano())
	return s, nil
}

// GetX509SVID returns the current certificate. It implements
// x509svid.Source. The result is shared: do not modify it.
func (s *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	s.maybeReload()
	return s.current.Load().svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle if it is td's. It
// implements x509bundle.Source. The result is shared: do not modify it.
func (s *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.maybeReload()
	return bundleFor(s.current.Load().bundle, td)
}

// Reload looks at the files now and loads them if they changed. It returns
// why a changed set of files was refused (the current certificate and bundle
// then stay), or nil.
func (s *FileSource) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

// maybeReload checks the files if the interval has passed and no other
// caller is checking them.
func (s *FileSource) maybeReload() {
	if s.now().UnixNano() < s.nextCheck.Load() || !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	s.reload()
}

// reload is Reload with s.mu held.
func (s *FileSource) reload() error {
	s.nextCheck.Store(s.now().Add(s.every).UnixNano())
	cur := s.current.Load()
	changed, err := s.changed(cur)
	if err != nil {
		s.log(slog.LevelWarn, "pki: certificate files unreadable; serving the loaded certificate", "err", err.Error())
		return err
	}
	if !changed {
		return nil
	}
	next, err := s.load(cur.svid.ID)
	if err != nil {
		s.log(slog.LevelWarn, "pki: changed certificate files refused; serving the loaded certificate", "err", err.Error())
		return err
	}
	s.current.Store(next)
	s.log(slog.LevelInfo, "pki: certificate files reloaded", "spiffe_id", next.svid.ID.String(),
		"not_after", next.svid.Certificates[0].NotAfter)
	return nil
}

func (s *FileSource) names() [3]string { return [3]string{s.certFile, s.keyFile, s.bundleFile} }

// changed reports whether any file differs from the version st was loaded
// from.
func (s *FileSource) changed(st *fileState) (bool, error) {
	for i, name := range s.names() {
		info, err := os.Stat(name)
		if err != nil {
			return false, fmt.Errorf("pki: %w", err)
		}
		if !unchanged(st.files[i], info) {
			return true, nil
		}
	}
	return false, nil
}

// load reads the three files and checks they fit together; want, if not
// zero, is the SPIFFE ID the certificate must have.
func (s *FileSource) load(want spiffeid.ID) (*fileState, error) {
	var st fileState
	for i, name := range s.names() {
		info, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		st.files[i] = info
	}
	svid, err := x509svid.Load(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s and %s: %w", s.certFile, s.keyFile, err)
	}
	if !want.IsZero() && svid.ID != want {
		return nil, fmt.Errorf("pki: %s names %s, want %s", s.certFile, svid.ID, want)
	}
	bundle, err := x509bundle.Load(svid.ID.TrustDomain(), s.bundleFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s: %w", s.bundleFile, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle, x509svid.WithTime(s.now())); err != nil {
		return nil, fmt.Errorf("pki: %s does not verify against %s: %w", s.certFile, s.bundleFile, err)
	}
	// A file that changed while it was read is read again next time.
	if changed, err := s.changed(&st); err != nil || changed {
		return nil, errors.New("pki: the certificate files changed while they were read")
	}
	st.svid, st.bundle = svid, bundle
	return &st, nil
}

func (s *FileSource) log(level slog.Level, msg string, args ...any) {
	if s.logger != nil {
		s.logger.Log(context.Background(), level, msg,
			append([]any{"cert_file", s.certFile}, args...)...)
	}
}

// Interface guards.
var (
	_ x509svid.Source   = (*FileSource)(nil)
	_ x509bundle.Source = (*FileSource)(nil)
)
