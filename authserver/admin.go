package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// AdminHandler returns the admin API (see package internal/adminapi for its
// routes), authenticated by Config.AdminToken, and /metrics, the Prometheus
// metrics when Config.Registerer is also a prometheus.Gatherer (as the
// default registry-per-server is). /metrics needs no token: it holds no
// secret, and a scraper should not hold admin power.
//
// Serve it on a listener of its own, on loopback or an internal network:
// the public handler (the Server itself) never serves these paths.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	if g, ok := s.cfg.Registerer.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelError)}))
	}
	mux.Handle("/", adminapi.NewHandler(s.admin, s.cfg.AdminToken, s.cfg.Logger))
	return mux
}

// RotateKey adds a signing key for alg (empty: Config.SigningAlgorithm),
// published at once and signing after KeyPublishDelay, and reloads the keys.
func (s *Server) RotateKey(ctx context.Context, alg string) (adminapi.Key, error) {
	return s.admin.RotateKey(ctx, adminapi.RotateKey{Algorithm: alg})
}

// RevokeKey stops trusting the signing key kid now (see Admin.RevokeKey)
// and reloads the keys.
func (s *Server) RevokeKey(ctx context.Context, kid string) (adminapi.Key, error) {
	return s.admin.RevokeKey(ctx, kid)
}

// AdminConfig configures an Admin. Store is required.
type AdminConfig struct {
	Store store.Store
	// Keyring hashes client secrets and seals signing keys. If nil, client
	// registration and key rotation fail (user administration works).
	Keyring *keyring.Keyring
	// PasswordParams for new password hashes. If zero, password.Default.
	PasswordParams password.Params
	// SigningAlgorithm of rotated keys when the request names none. If
	// empty, ES256.
	SigningAlgorithm string
	// KeyPublishDelay is how long a rotated key is published before it
	// signs. If zero, 10m; a negative value makes it sign at once.
	KeyPublishDelay time.Duration
	// Logger receives audit events. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Admin manages users, clients, sessions and signing keys in a store: it
// implements adminapi.Service. A Server serves one on its admin listener;
// the CLI uses one directly on a store. It is safe for concurrent use.
type Admin struct {
	cfg      AdminConfig
	accounts *accounts.Manager
	// afterKeyChange, if set, runs after a key is added or revoked (the
	// server reloads).
	afterKeyChange func(context.Context) error
	// afterClientChange, if set, runs after a client is changed (the
	// server forgets the clients it cached).
	afterClientChange func()
	// afterSessionRevoked, if set, runs after a session of the client is
	// revoked (the server marks its JWT access tokens revoked, see
	// revocation.go).
	afterSessionRevoked func(ctx context.Context, userID, clientID, familyID string) error
}

// RotatableAlgorithms are the algorithms RotateKey can create keys for.
var RotatableAlgorithms = []string{jose.ES256, jose.RS256, jose.EdDSA}

// NewAdmin returns an Admin for cfg.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Store == nil {
		return nil, errors.New("authserver: AdminConfig needs a Store")
	}
	if cfg.SigningAlgorithm == "" {
		cfg.SigningAlgorithm = jose.ES256
	}
	setDuration(&cfg.KeyPublishDelay, defaultKeyPublishDelay)
	if cfg.KeyPublishDelay < 0 {
		cfg.KeyPublishDelay = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Admin{cfg: cfg, accounts: &accounts.Manager{Store: cfg.Store, Params: cfg.PasswordParams, Now: cfg.Now}}
	if cfg.Keyring != nil {
		a.accounts.Secrets = cfg.Keyring.Hasher(keyring.PurposeClientSecret)
	}
	return a, nil
}

func (a *Admin) audit(ctx context.Context, event string, args ...any) {
	a.cfg.Logger.InfoContext(ctx, "admin: "+event, append([]any{"audit", true}, args...)...)
}

var errNoKeyring = errors.New("authserver: the master key is needed for this (AdminConfig.Keyring)")

// kindError gives err the kind of an adminapi sentinel and keeps its message.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// apiError maps store and accounts errors to adminapi's sentinels.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return kindError{adminapi.ErrNotFound, err}
	case errors.Is(err, store.ErrAlreadyExists):
		return kindError{adminapi.ErrConflict, err}
	case errors.Is(err, accounts.ErrInvalid):
		return kindError{adminapi.ErrInvalid, err}
	}
	return err
}

func invalid(format string, args ...any) error {
	return kindError{adminapi.ErrInvalid, fmt.Errorf(format, args...)}
}

func userRecord(u store.User) adminapi.User {
	return adminapi.User{ID: u.ID, Username: u.Username, Roles: nonNil(u.Roles), Disabled: u.Disabled,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func clientRecord(c store.Client) adminapi.Client {
	return adminapi.Client{ID: c.ID, Public: c.Public, AuthMethod: c.AuthMethod, Grants: nonNil(c.Grants),
		Scopes: nonNil(c.Scopes), RedirectURIs: nonNil(c.RedirectURIs), Audience: nonNil(c.Audience),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		AccessTokenFormat:      c.AccessTokenFormat, TrustedProxy: c.TrustedProxy, CertificateBound: c.CertificateBound, Disabled: c.Disabled,
		JWKS: json.RawMessage(c.JWKS), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ListUsers implements adminapi.Service.
func (a *Admin) ListUsers(ctx context.Context) ([]adminapi.User, error) {
	users, err := a.cfg.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.User, len(users))
	for i, u := range users {
		out[i] = userRecord(u)
	}
	return out, nil
}

// GetUser implements adminapi.Service.
func (a *Admin) GetUser(ctx context.Context, username string) (adminapi.User, error) {
	u, err := a.cfg.Store.GetUser(ctx, username)
	if err != nil {
		return adminapi.User{}, apiError(fmt.Errorf("user %q: %w", username, err))
	}
	return userRecord(u), nil
}

// CreateUser implements adminapi.Service.
func (a *Admin) CreateUser(ctx context.Context, nu adminapi.NewUser) (adminapi.User, error) {
	u, err := a.accounts.AddUser(ctx, nu.Username, nu.Password, nu.Roles)
	if err != nil {
		return adminapi.User{}, apiError(err)
	}
	a.audit(ctx, "user created", "username", u.Username, "sub", u.ID, "roles", u.Roles)
	return userRecord(u), nil
}

// SetUserDisabled implements adminapi.Service. Disabling a user ends their
// tokens for good, in the update that disables them (see
// store.User.TokensNotBefore): enabling them again brings none back, just
// as the receivers of the account-disabled event keep refusing them.
func (a *Admin) SetUserDisabled(ctx context.Context, username string, disabled bool) (adminapi.User, error) {
	if !disabled {
		if err := a.accounts.SetDisabled(ctx, username, false); err != nil {
			return adminapi.User{}, apiError(err)
		}
		u, err := a.cfg.Store.GetUser(ctx, username)
		if err != nil {
			return adminapi.User{}, apiError(err)
		}
		a.audit(ctx, "user updated", "username", username, "sub", u.ID, "disabled", false)
		return userRecord(u), nil
	}
	now := a.cfg.Now().UTC()
	u, err := a.accounts.Disable(ctx, username, now)
	if err != nil {
		return adminapi.User{}, apiError(err)
	}
	a.audit(ctx, "user updated", "username", username, "sub", u.ID, "disabled", true)
	if err := a.appendEvent(ctx, store.Event{Type: riscAccountDisabled, Subject: u.ID, CreatedAt: now}); err != nil {
		return adminapi.User{}, err
	}
	if _, err := a.revokeUserSessions(ctx, u.ID, "user disabled"); err != nil {
		return adminapi.User{}, err
	}
	return userRecord(u), nil
}

// SetPassword implements adminapi.Service. The change ends the user's
// access tokens issued up to it and all their sessions.
func (a *Admin) SetPassword(ctx context.Context, username, pw string) error {
	now := a.cfg.Now().UTC()
	u, err := a.accounts.ChangePassword(ctx, username, pw, now)
	if err != nil {
		return apiError(err)
	}
	a.audit(ctx, "password set", "username", username, "sub", u.ID)
	if err := a.appendEvent(ctx, store.Event{Type: caepCredentialChange, Subject: u.ID, CreatedAt: now,
		Data: []byte(`{"credential_type":"password","change_type":"update"}`)}); err != nil {
		return err
	}
	_, err = a.revokeUserSessions(ctx, u.ID, "password changed")
	return err
}

// SetRoles implements adminapi.Service. The change ends the user's access
// tokens issued up to it, which carry the old roles; their sessions go on,
// and the next refresh carries the new roles.
func (a *Admin) SetRoles(ctx context.Context, username string, roles []string) (adminapi.User, error) {
	now := a.cfg.Now().UTC()
	u, err := a.accounts.ChangeRoles(ctx, username, roles, now)
	if err != nil {
		return adminapi.User{}, apiError(err)
	}
	a.audit(ctx, "user updated", "username", username, "roles", roles)
	claims, _ := json.Marshal(map[string]any{"initiating_entity": secevent.InitiatedByAdmin, "claims": map[string]any{"roles": nonNil(u.Roles)}})
	return userRecord(u), a.appendEvent(ctx, store.Event{Type: secevent.TokenClaimsChange, Subject: u.ID, Data: claims, CreatedAt: now})
}

// ListSessions implements adminapi.Service.
func (a *Admin) ListSessions(ctx context.Context, username string) ([]adminapi.Session, error) {
	u, err := a.cfg.Store.GetUser(ctx, username)
	if err != nil {
		return nil, apiError(fmt.Errorf("user %q: %w", username, err))
	}
	sessions, err := a.cfg.Store.ListSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.Session, len(sessions))
	for i, s := range sessions {
		out[i] = adminapi.Session{ID: s.FamilyID, ClientID: s.ClientID, Scopes: nonNil(s.Scopes),
			AuthTime: s.AuthTime, LastUsed: s.LastUsed, ExpiresAt: s.ExpiresAt, Revoked: s.Revoked}
	}
	return out, nil
}

// RevokeSession implements adminapi.Service.
func (a *Admin) RevokeSession(ctx context.Context, username, sessionID string) error {
	sessions, err := a.ListSessions(ctx, username)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(sessions, func(s adminapi.Session) bool { return s.ID == sessionID })
	if i < 0 {
		return kindError{adminapi.ErrNotFound, fmt.Errorf("user %q has no session %q", username, sessionID)}
	}
	u, err := a.cfg.Store.GetUser(ctx, username)
	if err != nil {
		return apiError(err)
	}
	return a.revokeFamily(ctx, u.ID, sessions[i].ClientID, sessionID, "admin")
}

// RevokeSessions implements adminapi.Service. Besides every session it ends
// every access token of the user issued up to now, also those of no session
// the store knows (a grant without a refresh token, an exchanged token): one
// session-revoked event names the user alone, which receivers apply to all
// the user's tokens, and the user's TokensNotBefore does the same at the
// server.
func (a *Admin) RevokeSessions(ctx context.Context, username string) ([]string, error) {
	now := a.cfg.Now().UTC()
	u, err := a.accounts.EndTokens(ctx, username, now)
	if err != nil {
		return nil, apiError(err)
	}
	data, _ := json.Marshal(map[string]string{"reason": "admin"})
	a.audit(ctx, "sessions revoked", "sub", u.ID, "reason", "admin")
	if err := a.appendEvent(ctx, store.Event{Type: caepSessionRevoked, Subject: u.ID, Data: data, CreatedAt: now}); err != nil {
		return nil, err
	}
	return a.revokeUserSessions(ctx, u.ID, "admin")
}

// revokeUserSessions revokes every refresh token and opaque access token of
// the user and records a session-revoked event per session.
func (a *Admin) revokeUserSessions(ctx context.Context, userID, reason string) ([]string, error) {
	sessions, err := a.cfg.Store.ListSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	families, err := a.cfg.Store.RevokeUserSessions(ctx, userID, a.cfg.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	for _, f := range families {
		var clientID string
		if i := slices.IndexFunc(sessions, func(s store.Session) bool { return s.FamilyID == f }); i >= 0 {
			clientID = sessions[i].ClientID
		}
		if err := a.revokeFamily(ctx, userID, clientID, f, reason); err != nil {
			return nil, err
		}
	}
	return nonNil(families), nil
}

// revokeFamily revokes one session's refresh and opaque access tokens and
// records the event.
func (a *Admin) revokeFamily(ctx context.Context, userID, clientID, familyID, reason string) error {
	now := a.cfg.Now().UTC()
	if _, err := a.cfg.Store.RevokeRefreshFamily(ctx, familyID, now); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if _, err := a.cfg.Store.RevokeFamilyAccessTokens(ctx, familyID, now); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if a.afterSessionRevoked != nil {
		if err := a.afterSessionRevoked(ctx, userID, clientID, familyID); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
	}
	data, _ := json.Marshal(map[string]string{"reason": reason})
	a.audit(ctx, "session revoked", "sub", userID, "sid", familyID, "reason", reason)
	return a.appendEvent(ctx, store.Event{Type: caepSessionRevoked, Subject: userID, SessionID: familyID,
		ClientID: clientID, Data: data})
}

// appendEvent appends e, at now unless e.CreatedAt is set.
func (a *Admin) appendEvent(ctx context.Context, e store.Event) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = a.cfg.Now().UTC()
	}
	if _, err := a.cfg.Store.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("append %s event: %w", e.Type, err)
	}
	return nil
}

// ListClients implements adminapi.Service.
func (a *Admin) ListClients(ctx context.Context) ([]adminapi.Client, error) {
	clients, err := a.cfg.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.Client, len(clients))
	for i, c := range clients {
		out[i] = clientRecord(c)
	}
	return out, nil
}

// GetClient implements adminapi.Service.
func (a *Admin) GetClient(ctx context.Context, id string) (adminapi.Client, error) {
	c, err := a.cfg.Store.GetClient(ctx, id)
	if err != nil {
		return adminapi.Client{}, apiError(fmt.Errorf("client %q: %w", id, err))
	}
	return clientRecord(c), nil
}

// CreateClient implements adminapi.Service. The secret is always generated.
func (a *Admin) CreateClient(ctx context.Context, nc adminapi.NewClient) (adminapi.CreatedClient, error) {
	if a.cfg.Keyring == nil {
		return adminapi.CreatedClient{}, errNoKeyring
	}
	c, secret, err := a.accounts.AddClient(ctx, accounts.ClientSpec{ID: nc.ID, Public: nc.Public,
		Grants: nc.Grants, Scopes: nc.Scopes, RedirectURIs: nc.RedirectURIs, Audience: nc.Audience,
		PostLogoutRedirectURIs: nc.PostLogoutRedirectURIs,
		AuthMethod:             nc.AuthMethod, JWKS: nc.JWKS, TrustedProxy: nc.TrustedProxy,
		AccessTokenFormat: nc.AccessTokenFormat, AccessTokenTTL: time.Duration(nc.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(nc.RefreshTokenTTL), RefreshAbsoluteTTL: time.Duration(nc.RefreshAbsoluteTTL),
		ExchangeAudiences: nc.ExchangeAudiences, CertificateBound: nc.CertificateBound})
	if err != nil {
		return adminapi.CreatedClient{}, apiError(err)
	}
	a.audit(ctx, "client created", "client_id", c.ID, "grants", c.Grants, "auth_method", c.AuthMethod,
		"trusted_proxy", c.TrustedProxy, "certificate_bound", c.CertificateBound)
	return adminapi.CreatedClient{Client: clientRecord(c), Secret: secret}, nil
}

// SetClientDisabled implements adminapi.Service. Disabling a client also
// revokes every token issued to it so far, for good: they stay invalid once
// the client is enabled again (see store.Client.DisabledAt), as they do at
// the receivers of its client-disabled event.
func (a *Admin) SetClientDisabled(ctx context.Context, id string, disabled bool) (adminapi.Client, error) {
	c, err := a.cfg.Store.UpdateClient(ctx, id, func(c *store.Client) error {
		now := a.cfg.Now().UTC()
		c.Disabled, c.UpdatedAt = disabled, now
		if disabled {
			c.DisabledAt = &now
		}
		return nil
	})
	if err != nil {
		return adminapi.Client{}, apiError(fmt.Errorf("client %q: %w", id, err))
	}
	if a.afterClientChange != nil {
		a.afterClientChange()
	}
	a.audit(ctx, "client updated", "client_id", id, "disabled", disabled)
	if disabled {
		if err := a.appendEvent(ctx, store.Event{Type: secevent.ClientDisabled, Subject: id, ClientID: id,
			Data: []byte(`{"initiating_entity":"admin"}`)}); err != nil {
			return adminapi.Client{}, err
		}
	}
	return clientRecord(c), nil
}

// ListKeys implements adminapi.Service.
func (a *Admin) ListKeys(ctx context.Context) ([]adminapi.Key, error) {
	keys, err := a.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	return keyRecords(keys, a.cfg.Now()), nil
}

// keyRecords describes keys at now; the active key is the one the server
// signs with: the newest that can sign.
func keyRecords(keys []store.SigningKey, now time.Time) []adminapi.Key {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b store.SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	active := -1
	for i, k := range keys {
		if canSign(k, now) {
			active = i
		}
	}
	out := make([]adminapi.Key, len(keys))
	for i, k := range keys {
		state := adminapi.KeyRetired
		switch {
		case i == active:
			state = adminapi.KeyActive
		case !inJWKS(k, now):
			state = adminapi.KeyExpired
		case k.ActiveAt.After(now):
			state = adminapi.KeyPending
		}
		out[i] = adminapi.Key{ID: k.ID, Algorithm: k.Algorithm, State: state, CreatedAt: k.CreatedAt,
			ActiveAt: k.ActiveAt, RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt}
	}
	return out
}

// RotateKey implements adminapi.Service.
func (a *Admin) RotateKey(ctx context.Context, r adminapi.RotateKey) (adminapi.Key, error) {
	alg := r.Algorithm
	if alg == "" {
		alg = a.cfg.SigningAlgorithm
	}
	if !slices.Contains(RotatableAlgorithms, alg) {
		return adminapi.Key{}, invalid("algorithm %q: choose one of %v", alg, RotatableAlgorithms)
	}
	if a.cfg.Keyring == nil {
		return adminapi.Key{}, errNoKeyring
	}
	now := a.cfg.Now().UTC()
	k, err := addSigningKey(ctx, a.cfg.Store, a.cfg.Keyring, alg, now, now.Add(a.cfg.KeyPublishDelay))
	if err != nil {
		return adminapi.Key{}, err
	}
	a.audit(ctx, "signing key added", "kid", k.ID, "alg", k.Algorithm, "active_at", k.ActiveAt)
	if a.afterKeyChange != nil {
		if err := a.afterKeyChange(ctx); err != nil {
			return adminapi.Key{}, err
		}
	}
	return keyRecords([]store.SigningKey{k}, now)[0], nil
}

// RevokeKey implements adminapi.Service: the key stops being trusted now.
// Its RetiredAt (unless already past) and ExpiresAt become now, so it never
// signs again and leaves the JWKS at once, and a secevent.KeyRetired event
// tells receivers to refuse the tokens it signed. Another key must take
// over: one that activated after it (an older key it superseded cannot
// sign again), or, for a key that is still pending, any key signing now.
// If that key is still in its publish delay, it signs from now: it is
// already published. Revoking a pending key cancels its rotation: the keys
// it was to retire sign on (a hand-set ExpiresAt of theirs is cleared). Without one, RevokeKey fails with ErrConflict: rotate
// first. Running servers other than this Admin's pick the change up within
// their KeyReloadInterval.
func (a *Admin) RevokeKey(ctx context.Context, kid string) (adminapi.Key, error) {
	now := a.cfg.Now().UTC()
	keys, err := a.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return adminapi.Key{}, err
	}
	i := slices.IndexFunc(keys, func(k store.SigningKey) bool { return k.ID == kid })
	if i < 0 {
		return adminapi.Key{}, apiError(fmt.Errorf("signing key %q: %w", kid, store.ErrNotFound))
	}
	next, ok := successor(keys, keys[i], now)
	if !ok {
		return adminapi.Key{}, kindError{adminapi.ErrConflict, fmt.Errorf(
			"signing key %q is the only key that can sign: rotate first (gatehouse keys rotate), then revoke it", kid)}
	}
	if next.ActiveAt.After(now) {
		if _, err := a.cfg.Store.UpdateSigningKey(ctx, next.ID, func(k *store.SigningKey) error {
			k.ActiveAt = now
			return nil
		}); err != nil {
			return adminapi.Key{}, fmt.Errorf("activate signing key %q: %w", next.ID, err)
		}
		a.audit(ctx, "signing key activated early", "kid", next.ID, "replaces", kid)
	}
	if err := a.cancelRetirements(ctx, keys, keys[i], now); err != nil {
		return adminapi.Key{}, err
	}
	k, err := a.cfg.Store.UpdateSigningKey(ctx, kid, func(k *store.SigningKey) error {
		if k.RetiredAt == nil || k.RetiredAt.After(now) {
			k.RetiredAt = &now
		}
		k.ExpiresAt = &now
		return nil
	})
	if err != nil {
		return adminapi.Key{}, apiError(fmt.Errorf("revoke signing key %q: %w", kid, err))
	}
	a.audit(ctx, "signing key revoked", "kid", kid, "signer", next.ID)
	// Reload before the event, so the server signs its SET with a key its
	// JWKS still lists; record the event even if the reload failed.
	var reloadErr error
	if a.afterKeyChange != nil {
		reloadErr = a.afterKeyChange(ctx)
	}
	data, _ := json.Marshal(map[string]string{"kid": kid, "initiating_entity": secevent.InitiatedByAdmin})
	if err := a.appendEvent(ctx, store.Event{Type: secevent.KeyRetired, Data: data}); err != nil {
		return adminapi.Key{}, errors.Join(err, reloadErr)
	}
	if reloadErr != nil {
		return adminapi.Key{}, reloadErr
	}
	return keyRecords([]store.SigningKey{k}, now)[0], nil
}

// cancelRetirements undoes what a reload recorded when the pending key k
// was rotated in: the retirement, at k's ActiveAt, of the keys k was to
// supersede. They sign on; the next reload retires them again if a later
// key supersedes them.
func (a *Admin) cancelRetirements(ctx context.Context, keys []store.SigningKey, k store.SigningKey, now time.Time) error {
	if !k.ActiveAt.After(now) {
		return nil
	}
	for _, n := range keys {
		if n.ID == k.ID || n.RetiredAt == nil || !n.RetiredAt.Equal(k.ActiveAt) {
			continue
		}
		_, err := a.cfg.Store.UpdateSigningKey(ctx, n.ID, func(sk *store.SigningKey) error {
			if sk.RetiredAt != nil && sk.RetiredAt.Equal(k.ActiveAt) {
				sk.RetiredAt, sk.ExpiresAt = nil, nil
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("keep signing key %q: %w", n.ID, err)
		}
	}
	return nil
}

// successor returns the key that signs once k is revoked at now: the first
// to activate of the unrevoked keys that activate after k, or, if k is
// still pending, the newest key signing now.
func successor(keys []store.SigningKey, k store.SigningKey, now time.Time) (store.SigningKey, bool) {
	var next store.SigningKey
	found, pending := false, k.ActiveAt.After(now)
	for _, n := range keys {
		if n.ID == k.ID || !inJWKS(n, now) || n.RetiredAt != nil && !now.Before(*n.RetiredAt) {
			continue
		}
		switch {
		case pending && canSign(n, now) && (!found || n.ActiveAt.After(next.ActiveAt)):
		case !pending && n.ActiveAt.After(k.ActiveAt) && (!found || n.ActiveAt.Before(next.ActiveAt)):
		default:
			continue
		}
		next, found = n, true
	}
	return next, found
}

var _ adminapi.Service = (*Admin)(nil)
