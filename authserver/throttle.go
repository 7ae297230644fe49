package authserver

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// LoginThrottle configures the throttling of failed logins. Failures are
// counted per username and per end-user address, in the store, so every
// replica sees them. Once a key has Failures failures, each within Window of
// the one before, it is locked for Lock, and every further failure doubles
// the lock up to MaxLock. A login with a locked username or address is
// refused with invalid_grant without its password being checked. A success
// forgets the username's failures (not the address's: one good account must
// not reset an address that is guessing others).
//
// The zero value is the default.
type LoginThrottle struct {
	// Failures before the first lock. If zero, 5.
	Failures int
	// Window: the count starts again after a failure-free Window. Keep it
	// longer than MaxLock, or a capped lock resets the count when it ends.
	// If zero, 1h.
	Window time.Duration
	// Lock is the first lock's length. If zero, 1s.
	Lock time.Duration
	// MaxLock caps a lock. If zero, 15m.
	MaxLock time.Duration
}

func (t *LoginThrottle) setDefaults() {
	if t.Failures <= 0 {
		t.Failures = 5
	}
	setDuration(&t.Window, time.Hour)
	setDuration(&t.Lock, time.Second)
	setDuration(&t.MaxLock, 15*time.Minute)
}

// lockFor is the lock after the given number of failures: none before
// Failures, then Lock doubling per failure, capped at MaxLock.
func (t *LoginThrottle) lockFor(failures int) time.Duration {
	if failures < t.Failures {
		return 0
	}
	d := t.Lock
	for range min(failures-t.Failures, 40) {
		if d >= t.MaxLock {
			break
		}
		d *= 2
	}
	return min(d, t.MaxLock)
}

// maxUsernameLength bounds the usernames a login may name, so that throttle
// keys stay small; no account can have a longer one.
const maxUsernameLength = 256

// loginKeys are the throttle keys of one login attempt.
type loginKeys struct {
	user string
	addr string // "" when the address is not throttled (a trusted proxy's own)
}

// errLocked is the answer while a username or address is locked. It says so:
// unknown usernames are locked alike, so it reveals nothing about accounts.
var errLocked = oauth.Errorf(oauth.ErrInvalidGrant, "too many failed logins; try again later")

// loginKeysFor returns the throttle keys of a login by username through the
// request's client. The end-user address is the request's remote address,
// except for a client registered as a trusted proxy: its own address is
// never throttled (it speaks for many users), and the address it names in
// oauth.ParamEndUserIP is throttled instead. Other clients' ParamEndUserIP is
// ignored.
func loginKeysFor(username string, req *tokenRequest) (loginKeys, error) {
	if len(username) > maxUsernameLength {
		return loginKeys{}, oauth.Errorf(oauth.ErrInvalidRequest, "username longer than %d bytes", maxUsernameLength)
	}
	k := loginKeys{user: "user:" + username}
	if !req.client.TrustedProxy {
		k.addr = addrKey(req.addr)
		return k, nil
	}
	if v := req.form.Get(oauth.ParamEndUserIP); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil || ip.Zone() != "" {
			return loginKeys{}, oauth.Errorf(oauth.ErrInvalidRequest, "%s must be an IP address", oauth.ParamEndUserIP)
		}
		k.addr = ipKey(ip)
	}
	return k, nil
}

// addrKey is the throttle key of a remote address ("host:port" or a host).
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	return ipKey(ip.WithZone(""))
}

// ipKey throttles an IPv4 address alone and an IPv6 address by its /64,
// the smallest block a single site is usually given.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}

func (k loginKeys) all() []string {
	if k.addr == "" {
		return []string{k.user}
	}
	return []string{k.user, k.addr}
}

// checkLoginAllowed returns errLocked when a key of k is locked at now.
func (s *Server) checkLoginAllowed(ctx context.Context, k loginKeys, clientID string) error {
	now := s.cfg.Now()
	for _, key := range k.all() {
		th, err := s.cfg.Store.GetThrottle(ctx, key)
		if err != nil {
			return s.internal(ctx, "get login throttle", err)
		}
		if now.Before(th.LockedUntil) {
			s.metrics.throttled.Inc()
			s.audit(ctx, "login refused: locked", "key", key, "client_id", clientID,
				"failures", th.Failures, "locked_until", th.LockedUntil.UTC())
			return errLocked
		}
	}
	return nil
}

// loginFailed counts a failure for every key of k. A store failure is
// logged: the login has failed anyway.
func (s *Server) loginFailed(ctx context.Context, k loginKeys) {
	now := s.cfg.Now().UTC()
	t := s.cfg.LoginThrottle
	for _, key := range k.all() {
		th, err := s.cfg.Store.RecordLoginFailure(ctx, key, now, t.Window, t.lockFor)
		if err != nil {
			s.cfg.Logger.ErrorContext(ctx, "record login failure", "key", key, "err", err)
			continue
		}
		if th.LockedUntil.After(now) {
			s.audit(ctx, "login locked", "key", key, "failures", th.Failures, "locked_until", th.LockedUntil.UTC())
		}
	}
}

// loginSucceeded forgets the username's failures.
func (s *Server) loginSucceeded(ctx context.Context, k loginKeys) {
	if err := s.cfg.Store.ResetThrottle(ctx, k.user); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "reset login throttle", "key", k.user, "err", err)
	}
}
