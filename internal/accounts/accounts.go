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
	"net/url"
	"regexp"
	"slices"
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

// SetPassword replaces a user's password.
func (m *Manager) SetPassword(ctx context.Context, username, pw string) error {
	if err := checkPassword(pw); err != nil {
		return err
	}
	hash, err := password.Hash(pw, m.params())
	if err != nil {
		return err
	}
	_, err = m.Store.UpdateUser(ctx, username, func(u *store.User) error {
		u.PasswordHash, u.UpdatedAt = hash, m.now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("set password of %q: %w", username, err)
	}
	return nil
}

// SetRoles replaces a user's roles.
func (m *Manager) SetRoles(ctx context.Context, username string, roles []string) error {
	if err := checkRoles(roles); err != nil {
		return err
	}
	_, err := m.Store.UpdateUser(ctx, username, func(u *store.User) error {
		u.Roles, u.UpdatedAt = roles, m.now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("set roles of %q: %w", username, err)
	}
	return nil
}

// SetDisabled disables or enables a user.
func (m *Manager) SetDisabled(ctx context.Context, username string, disabled bool) error {
	_, err := m.Store.UpdateUser(ctx, username, func(u *store.User) error {
		u.Disabled, u.UpdatedAt = disabled, m.now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("update %q: %w", username, err)
	}
	return nil
}

// ClientSpec describes a client to register.
type ClientSpec struct {
	ID           string
	Secret       string // if empty for a confidential client, one is generated
	Public       bool
	Grants       []string
	Scopes       []string
	RedirectURIs []string
	Audience     []string
	// AuthMethod is the registered token_endpoint_auth_method: one of the
	// store.Auth* constants, or empty for the server's default.
	AuthMethod string
	// JWKS is the client's public keys (a JWKS document) for
	// store.AuthPrivateKeyJWT; required for that method, refused for others.
	JWKS []byte
	// TrustedProxy lets the client name the end user's address for login
	// throttling (see store.Client.TrustedProxy); confidential clients only.
	TrustedProxy bool
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
	if err := checkClient(spec); err != nil {
		return store.Client{}, "", err
	}
	jwks, err := publicJWKS(spec)
	if err != nil {
		return store.Client{}, "", err
	}
	secret := spec.Secret
	var hash string
	if !spec.Public && spec.AuthMethod != store.AuthPrivateKeyJWT {
		if secret == "" {
			secret = keyring.RandomToken(SecretBytes)
		}
		hash = m.Secrets.Hash(secret)
	}
	now := m.now()
	return store.Client{
		ID: spec.ID, SecretHash: hash, Public: spec.Public,
		Grants: spec.Grants, Scopes: spec.Scopes, RedirectURIs: spec.RedirectURIs, Audience: spec.Audience,
		AccessTokenFormat: store.FormatJWT, AuthMethod: spec.AuthMethod, JWKS: jwks,
		TrustedProxy: spec.TrustedProxy, CreatedAt: now, UpdatedAt: now,
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
		p, err := url.Parse(u)
		if err != nil || !p.IsAbs() || p.Fragment != "" {
			return fmt.Errorf("%w client %q: redirect URI %q must be absolute, without fragment", ErrInvalid, spec.ID, u)
		}
	}
	return nil
}
