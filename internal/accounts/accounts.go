// Package accounts creates and changes users and clients with every rule a
// record must satisfy: valid names, argon2id password hashes, generated client
// secrets stored only as keyed hashes, grants and scopes that the server
// supports. The CLI, the seed file and the admin API all go through it, so
// none of them can store a record the authorization server would misread.
package accounts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ErrInvalid reports a record that breaks a rule; the message says which.
var ErrInvalid = errors.New("invalid")

// SupportedGrants are the grant types a client may be registered for: the
// grants of RFC 6749 and RFC 8693. Registering one does not make the token
// endpoint implement it; the server's discovery document lists those it does.
var SupportedGrants = []string{oauth.GrantPassword, oauth.GrantRefreshToken, oauth.GrantClientCredentials,
	oauth.GrantAuthorizationCode, oauth.GrantTokenExchange}

// PublicGrants are the only grants a public client may be registered for: it
// has no secret, so it may only redeem authorization codes it obtained with
// PKCE and refresh what that issued.
var PublicGrants = []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}

// MinPasswordLength is the shortest password accepted for a user.
const MinPasswordLength = 8

// SecretBytes is the entropy of a generated client secret (256 bits).
const SecretBytes = 32

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,64}$`) // RFC 6749 §3.3 scope-token
)

// Manager changes users and clients in a store.
type Manager struct {
	Store store.Store
	// Secrets hashes client secrets; required for client operations.
	Secrets *keyring.Hasher
	// Params for new password hashes; if zero, password.Default.
	Params password.Params
	// Now; if nil, time.Now.
	Now func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Manager) params() password.Params {
	if m.Params == (password.Params{}) {
		return password.Default
	}
	return m.Params
}

// NewID returns a random identifier for a user's subject.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddUser creates a user with a fresh subject ID.
func (m *Manager) AddUser(ctx context.Context, username, pw string, roles []string) (store.User, error) {
	if err := checkUser(username, pw, roles); err != nil {
		return store.User{}, err
	}
	hash, err := password.Hash(pw, m.params())
	if err != nil {
		return store.User{}, err
	}
	now := m.now()
	u := store.User{ID: NewID(), Username: username, PasswordHash: hash, Roles: roles, CreatedAt: now, UpdatedAt: now}
	if err := m.Store.CreateUser(ctx, u); err != nil {
		return store.User{}, fmt.Errorf("add user %q: %w", username, err)
	}
	return u, nil
}

// SetPassword replaces a user's password and ends no token: for a rehash
// under new parameters, or a seed applied again. A change an event announces
// is ChangePassword.
func (m *Manager) SetPassword(ctx context.Context, username, pw string) error {
	_, err := m.setPassword(ctx, username, pw, time.Time{})
	return err
}

// ErrPasswordChanged is returned by Rehash when the user's password hash is
// no longer the one that was verified.
var ErrPasswordChanged = errors.New("the password was changed meanwhile")

// Rehash stores pw's hash under the current parameters, for a login that
// just verified pw against oldHash — only if the stored hash is still
// oldHash, so a login racing a password change never writes the old
// password back. It ends no token.
func (m *Manager) Rehash(ctx context.Context, username, pw, oldHash string) error {
	hash, err := password.Hash(pw, m.params())
	if err != nil {
		return err
	}
	_, err = m.Store.UpdateUser(ctx, username, func(u *store.User) error {
		if u.PasswordHash != oldHash {
			return ErrPasswordChanged
		}
		u.PasswordHash, u.UpdatedAt = hash, m.now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("rehash password of %q: %w", username, err)
	}
	return nil
}

// ChangePassword replaces a user's password and, in the same update, ends
// every access token of the user issued up to at (see EndTokens): the change
// a credential-change event at at announces.
func (m *Manager) ChangePassword(ctx context.Context, username, pw string, at time.Time) (store.User, error) {
	return m.setPassword(ctx, username, pw, at)
}

func (m *Manager) setPassword(ctx context.Context, username, pw string, at time.Time) (store.User, error) {
	if err := checkPassword(pw); err != nil {
		return store.User{}, err
	}
	hash, err := password.Hash(pw, m.params())
	if err != nil {
		return store.User{}, err
	}
	return m.update(ctx, "set password of", username, at, func(u *store.User) { u.PasswordHash = hash })
}

// SetRoles replaces a user's roles and ends no token (a seed applied
// again). A change an event announces is ChangeRoles.
func (m *Manager) SetRoles(ctx context.Context, username string, roles []string) error {
	_, err := m.setRoles(ctx, username, roles, time.Time{})
	return err
}

// ChangeRoles replaces a user's roles and, in the same update, ends every
// access token of the user issued up to at, which carries the old roles
// (see EndTokens): the change a token-claims-change event at at announces.
func (m *Manager) ChangeRoles(ctx context.Context, username string, roles []string, at time.Time) (store.User, error) {
	return m.setRoles(ctx, username, roles, at)
}

func (m *Manager) setRoles(ctx context.Context, username string, roles []string, at time.Time) (store.User, error) {
	if err := checkRoles(roles); err != nil {
		return store.User{}, err
	}
	return m.update(ctx, "set roles of", username, at, func(u *store.User) { u.Roles = roles })
}

// SetDisabled disables or enables a user. Enabling never brings back the
// tokens a Disable ended. Disabling this way ends no token for good: they
// are refused while the user is disabled (a seed); a disabling an event
// announces is Disable.
func (m *Manager) SetDisabled(ctx context.Context, username string, disabled bool) error {
	_, err := m.update(ctx, "update", username, time.Time{}, func(u *store.User) { u.Disabled = disabled })
	return err
}

// Disable disables a user and, in the same update, ends every access token
// of the user issued up to at (see EndTokens): the change an
// account-disabled event at at announces.
func (m *Manager) Disable(ctx context.Context, username string, at time.Time) (store.User, error) {
	return m.update(ctx, "disable", username, at, func(u *store.User) { u.Disabled = true })
}

// EndTokens ends every access token of the user issued up to at: it moves
// store.User.TokensNotBefore forward to at (never back). The authorization
// server then refuses those tokens, as SSF receivers do after an event at at
// about the user.
func (m *Manager) EndTokens(ctx context.Context, username string, at time.Time) (store.User, error) {
	return m.update(ctx, "end tokens of", username, at, func(*store.User) {})
}

// update applies change to the user in one store update, with the new
// UpdatedAt and, unless endTokensAt is zero, TokensNotBefore moved forward to
// it.
func (m *Manager) update(ctx context.Context, what, username string, endTokensAt time.Time, change func(*store.User)) (store.User, error) {
	u, err := m.Store.UpdateUser(ctx, username, func(u *store.User) error {
		change(u)
		u.UpdatedAt = m.now()
		if !endTokensAt.IsZero() && (u.TokensNotBefore == nil || endTokensAt.After(*u.TokensNotBefore)) {
			at := endTokensAt.UTC()
			u.TokensNotBefore = &at
		}
		return nil
	})
	if err != nil {
		return store.User{}, fmt.Errorf("%s %q: %w", what, username, err)
	}
	return u, nil
}

// ClientSpec describes a client to register.
type ClientSpec struct {
	ID     string
	Secret string // if empty for a confidential client, one is generated
	// Public marks a client that cannot keep a secret. AuthMethod "none"
	// implies it.
	Public bool
	// AuthMethod is the token_endpoint_auth_method: one of
	// AuthMethods. If empty, client_secret_basic for a
	// confidential client and none for a public one.
	AuthMethod string
	Grants     []string
	Scopes     []string
	// RedirectURIs are compared exactly; required with the
	// authorization_code grant.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout; compared exactly, checked like
	// RedirectURIs. Optional.
	PostLogoutRedirectURIs []string
	Audience               []string
	// AccessTokenFormat is store.FormatJWT or store.FormatOpaque; if
	// empty, JWT.
	AccessTokenFormat string
	// Lifetimes of its tokens; zero means the server's default.
	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration // how long a refresh token may go unused
	RefreshAbsoluteTTL time.Duration // how long a session may last from the login
	// ExchangeAudiences are the audiences (or resource URIs) it may ask
	// for in a token exchange (RFC 8693); it needs the token-exchange grant.
	ExchangeAudiences []string
	// JWKS is the client's public keys (a JWKS document) for
	// store.AuthPrivateKeyJWT; required for that method, refused for others.
	JWKS []byte
	// TrustedProxy lets the client name the end user's address for login
	// throttling (see store.Client.TrustedProxy); confidential clients only.
	TrustedProxy bool
	// CertificateBound requires its access tokens to be bound to its TLS
	// client certificate (see store.Client.CertificateBound).
	CertificateBound bool
}

// AddClient registers a client and returns it with the plain secret, which
// is never stored: show it once.
func (m *Manager) AddClient(ctx context.Context, spec ClientSpec) (store.Client, string, error) {
	c, secret, err := m.buildClient(spec)
	if err != nil {
		return store.Client{}, "", err
	}
	if err := m.Store.CreateClient(ctx, c); err != nil {
		return store.Client{}, "", fmt.Errorf("add client %q: %w", spec.ID, err)
	}
	return c, secret, nil
}

// PutClient creates the client or replaces its registration and secret.
func (m *Manager) PutClient(ctx context.Context, spec ClientSpec) (store.Client, string, error) {
	c, secret, err := m.buildClient(spec)
	if err != nil {
		return store.Client{}, "", err
	}
	err = m.Store.CreateClient(ctx, c)
	if errors.Is(err, store.ErrAlreadyExists) {
		c, err = m.Store.UpdateClient(ctx, spec.ID, func(old *store.Client) error {
			created := old.CreatedAt
			*old = c
			old.CreatedAt = created
			return nil
		})
	}
	if err != nil {
		return store.Client{}, "", fmt.Errorf("put client %q: %w", spec.ID, err)
	}
	return c, secret, nil
}

func (m *Manager) buildClient(spec ClientSpec) (store.Client, string, error) {
	if m.Secrets == nil {
		return store.Client{}, "", errors.New("accounts: Manager.Secrets is required for clients")
	}
	spec.Public = spec.Public || spec.AuthMethod == store.AuthNone
	if spec.AuthMethod == "" {
		spec.AuthMethod = store.AuthClientSecretBasic
		if spec.Public {
			spec.AuthMethod = store.AuthNone
		}
	}
	if err := checkClient(spec); err != nil {
		return store.Client{}, "", err
	}
	jwks, err := publicJWKS(spec)
	if err != nil {
		return store.Client{}, "", err
	}
	secret := spec.Secret
	var hash string
	if !spec.Public && spec.AuthMethod != store.AuthPrivateKeyJWT && spec.AuthMethod != store.AuthTLSClientAuth {
		if secret == "" {
			secret = keyring.RandomToken(SecretBytes)
		}
		hash = m.Secrets.Hash(secret)
	}
	format := spec.AccessTokenFormat
	if format == "" {
		format = store.FormatJWT
	}
	now := m.now()
	return store.Client{
		ID: spec.ID, SecretHash: hash, Public: spec.Public, AuthMethod: spec.AuthMethod,
		Grants: spec.Grants, Scopes: spec.Scopes, RedirectURIs: spec.RedirectURIs, Audience: spec.Audience,
		PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs, AccessTokenFormat: format, AccessTokenTTL: spec.AccessTokenTTL, RefreshTokenTTL: spec.RefreshTokenTTL,
		RefreshAbsoluteTTL: spec.RefreshAbsoluteTTL, ExchangeAudiences: spec.ExchangeAudiences,
		JWKS: jwks, TrustedProxy: spec.TrustedProxy, CertificateBound: spec.CertificateBound, CreatedAt: now, UpdatedAt: now,
	}, secret, nil
}

func checkUser(username, pw string, roles []string) error {
	if !nameRE.MatchString(username) {
		return fmt.Errorf("%w username %q: use 1-64 letters, digits, '.', '_', '@' or '-'", ErrInvalid, username)
	}
	if err := checkPassword(pw); err != nil {
		return err
	}
	return checkRoles(roles)
}

func checkPassword(pw string) error {
	if len(pw) < MinPasswordLength {
		return fmt.Errorf("%w password: shorter than %d characters", ErrInvalid, MinPasswordLength)
	}
	if len(pw) > password.MaxLength {
		return fmt.Errorf("%w password: longer than %d bytes", ErrInvalid, password.MaxLength)
	}
	return nil
}

func checkRoles(roles []string) error {
	for _, r := range roles {
		if !nameRE.MatchString(r) {
			return fmt.Errorf("%w role %q", ErrInvalid, r)
		}
	}
	return nil
}

func checkClient(spec ClientSpec) error {
	if !nameRE.MatchString(spec.ID) {
		return fmt.Errorf("%w client id %q: use 1-64 letters, digits, '.', '_', '@' or '-'", ErrInvalid, spec.ID)
	}
	if spec.Public && spec.Secret != "" {
		return fmt.Errorf("%w client %q: a public client has no secret", ErrInvalid, spec.ID)
	}
	if !spec.Public && spec.Secret != "" && len(spec.Secret) < 16 {
		return fmt.Errorf("%w client %q: secret shorter than 16 characters", ErrInvalid, spec.ID)
	}
	if err := checkAuthMethod(spec); err != nil {
		return err
	}
	if len(spec.Grants) == 0 {
		return fmt.Errorf("%w client %q: no grants", ErrInvalid, spec.ID)
	}
	for _, g := range spec.Grants {
		if !slices.Contains(SupportedGrants, g) {
			return fmt.Errorf("%w client %q: grant %q is not supported (supported: %v)", ErrInvalid, spec.ID, g, SupportedGrants)
		}
		if spec.Public && !slices.Contains(PublicGrants, g) {
			return fmt.Errorf("%w client %q: a public client may only have the grants %v, not %q", ErrInvalid, spec.ID, PublicGrants, g)
		}
	}
	if slices.Contains(spec.Grants, oauth.GrantAuthorizationCode) && len(spec.RedirectURIs) == 0 {
		return fmt.Errorf("%w client %q: the %s grant needs at least one redirect URI", ErrInvalid, spec.ID, oauth.GrantAuthorizationCode)
	}
	for _, s := range spec.Scopes {
		if !scopeRE.MatchString(s) {
			return fmt.Errorf("%w client %q: scope %q", ErrInvalid, spec.ID, s)
		}
	}
	for _, a := range spec.Audience {
		if a == "" {
			return fmt.Errorf("%w client %q: empty audience", ErrInvalid, spec.ID)
		}
	}
	for _, u := range spec.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return fmt.Errorf("%w client %q: redirect URI %q %v", ErrInvalid, spec.ID, u, err)
		}
	}
	for _, u := range spec.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return fmt.Errorf("%w client %q: post-logout redirect URI %q %v", ErrInvalid, spec.ID, u, err)
		}
	}
	return checkTokens(spec)
}

// checkTokens checks the client's token format, lifetimes and exchange
// audiences.
func checkTokens(spec ClientSpec) error {
	switch spec.AccessTokenFormat {
	case "", store.FormatJWT, store.FormatOpaque:
	default:
		return fmt.Errorf("%w client %q: access token format %q (want %q or %q)", ErrInvalid, spec.ID,
			spec.AccessTokenFormat, store.FormatJWT, store.FormatOpaque)
	}
	for _, d := range []struct {
		name string
		ttl  time.Duration
	}{{"access token ttl", spec.AccessTokenTTL}, {"refresh token ttl", spec.RefreshTokenTTL},
		{"refresh absolute ttl", spec.RefreshAbsoluteTTL}} {
		if d.ttl < 0 {
			return fmt.Errorf("%w client %q: negative %s %v", ErrInvalid, spec.ID, d.name, d.ttl)
		}
		if d.ttl > 0 && d.ttl < time.Second {
			return fmt.Errorf("%w client %q: %s %v is shorter than a second", ErrInvalid, spec.ID, d.name, d.ttl)
		}
	}
	if len(spec.ExchangeAudiences) > 0 && !slices.Contains(spec.Grants, oauth.GrantTokenExchange) {
		return fmt.Errorf("%w client %q: exchange audiences need the %s grant", ErrInvalid, spec.ID, oauth.GrantTokenExchange)
	}
	for _, a := range spec.ExchangeAudiences {
		if a == "" {
			return fmt.Errorf("%w client %q: empty exchange audience", ErrInvalid, spec.ID)
		}
	}
	return nil
}

// checkRedirectURI applies RFC 6749 §3.1.2 and RFC 9700 §4.1: absolute,
// no fragment, https or http on a loopback host (RFC 8252 §7.3), or a
// private-use scheme of a native app (RFC 8252 §7.1) — never a scheme that
// runs or embeds content in the browser.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || strings.Contains(raw, "#"):
		return errors.New("must be absolute, without fragment")
	case len(raw) > 2000:
		return errors.New("is longer than 2000 characters")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("has no host")
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return errors.New("uses http on a host that is not loopback (use https)")
		}
	case "javascript", "data", "vbscript", "file", "blob", "about":
		return fmt.Errorf("uses the scheme %q", u.Scheme)
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
