// Package adminapi is the wire protocol of the authorization server's admin
// API: the JSON records, the Service both ends implement, NewHandler, which
// serves a Service over HTTP behind an admin bearer token, and Remote, which
// calls one. The authorization server implements Service over its store
// (authserver.Admin); the CLI uses either that or a Remote, so its commands
// work the same on a store and on a running server.
//
// Routes, below the admin listener's root (every one needs
// "Authorization: Bearer <admin token>"):
//
//	GET    /v1/users                          list users
//	POST   /v1/users                          create a user (NewUser)
//	GET    /v1/users/{username}               one user
//	POST   /v1/users/{username}/disable       disable, revoking its sessions
//	POST   /v1/users/{username}/enable        enable
//	PUT    /v1/users/{username}/password      set the password (Password), revoking its sessions
//	PUT    /v1/users/{username}/roles         set the roles (Roles)
//	GET    /v1/users/{username}/sessions      its refresh-token families
//	DELETE /v1/users/{username}/sessions      revoke them all
//	DELETE /v1/users/{username}/sessions/{sid} revoke one
//	GET    /v1/clients                        list clients
//	POST   /v1/clients                        register a client (NewClient); the secret is in the answer only
//	GET    /v1/clients/{client_id}            one client
//	POST   /v1/clients/{client_id}/disable    disable
//	POST   /v1/clients/{client_id}/enable     enable
//	GET    /v1/keys                           signing keys
//	POST   /v1/keys/rotate                    add a signing key (RotateKey)
//	POST   /v1/keys/{kid}/revoke              stop trusting a signing key now
//	POST   /v1/join-tokens                    a one-time join token for the issuance endpoint (NewJoinToken)
//
// Errors are JSON objects {"error": code, "error_description": text} with
// the codes unauthorized (401), invalid_request (400), not_found (404),
// conflict (409) and server_error (500).
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors: a Service wraps them, the handler maps them to statuses,
// and Remote returns them (as an *Error that unwraps to them).
var (
	ErrUnauthorized = errors.New("admin token missing or wrong")
	ErrInvalid      = errors.New("invalid request")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("already exists")
)

// Service is what the admin API offers. Implementations are safe for
// concurrent use.
type Service interface {
	ListUsers(ctx context.Context) ([]User, error)
	GetUser(ctx context.Context, username string) (User, error)
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// SetUserDisabled disables (revoking every session) or enables a user.
	SetUserDisabled(ctx context.Context, username string, disabled bool) (User, error)
	// SetPassword replaces the password and revokes every session.
	SetPassword(ctx context.Context, username, password string) error
	SetRoles(ctx context.Context, username string, roles []string) (User, error)
	ListSessions(ctx context.Context, username string) ([]Session, error)
	// RevokeSession revokes one of the user's sessions; ErrNotFound if the
	// user has no session with that ID.
	RevokeSession(ctx context.Context, username, sessionID string) error
	// RevokeSessions revokes every session of the user and returns the IDs
	// of those that were active.
	RevokeSessions(ctx context.Context, username string) ([]string, error)

	ListClients(ctx context.Context) ([]Client, error)
	GetClient(ctx context.Context, id string) (Client, error)
	// CreateClient registers a client; the answer holds its generated
	// secret, which is stored only hashed and never shown again.
	CreateClient(ctx context.Context, c NewClient) (CreatedClient, error)
	SetClientDisabled(ctx context.Context, id string, disabled bool) (Client, error)

	ListKeys(ctx context.Context) ([]Key, error)
	// RotateKey adds a signing key: published at once, signing after the
	// server's publish delay, when it retires the current one.
	RotateKey(ctx context.Context, r RotateKey) (Key, error)
	// RevokeKey stops trusting a signing key now: it never signs again,
	// leaves the JWKS at once, and verifiers following the event stream
	// refuse the tokens it signed. ErrConflict if no other key could sign.
	RevokeKey(ctx context.Context, kid string) (Key, error)

	// CreateJoinToken creates a one-time join token with which the service
	// it names gets its first certificate from the issuance endpoint. The
	// answer holds the token, which is stored only hashed and never shown
	// again. ErrNotFound if no client has the service's name.
	CreateJoinToken(ctx context.Context, jt NewJoinToken) (JoinToken, error)
}

// User is a user as the admin API shows it: never its password hash.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewUser is the body of POST /v1/users.
type NewUser struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

// Password is the body of PUT /v1/users/{username}/password.
type Password struct {
	Password string `json:"password"`
}

// Roles is the body of PUT /v1/users/{username}/roles.
type Roles struct {
	Roles []string `json:"roles"`
}

// Session is a refresh-token family: one login of a user at a client.
type Session struct {
	ID        string    `json:"sid"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	AuthTime  time.Time `json:"auth_time"`
	LastUsed  time.Time `json:"last_used"`
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
}

// Revoked answers DELETE /v1/users/{username}/sessions.
type Revoked struct {
	Sessions []string `json:"revoked_sessions"`
}

// Client is a client registration as the admin API shows it: never its
// secret or the secret's hash.
type Client struct {
	ID           string   `json:"client_id"`
	Public       bool     `json:"public"`
	AuthMethod   string   `json:"token_endpoint_auth_method,omitempty"`
	Grants       []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout (OpenID Connect RP-Initiated Logout 1.0).
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	Audience               []string        `json:"audience"`
	AccessTokenFormat      string          `json:"access_token_format"`
	TrustedProxy           bool            `json:"trusted_proxy"`
	CertificateBound       bool            `json:"tls_client_certificate_bound_access_tokens"`
	Disabled               bool            `json:"disabled"`
	JWKS                   json.RawMessage `json:"jwks,omitempty"`
	CreatedAt              time.Time       `json:"created_at"`
	UpdatedAt              time.Time       `json:"updated_at"`
}

// NewClient is the body of POST /v1/clients. A confidential client gets a
// generated secret unless it authenticates with private_key_jwt, which needs
// JWKS (public keys only), or with tls_client_auth (its certificate).
type NewClient struct {
	ID           string   `json:"client_id"`
	Public       bool     `json:"public"`
	AuthMethod   string   `json:"token_endpoint_auth_method,omitempty"`
	Grants       []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout; compared exactly. Optional.
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris,omitempty"`
	Audience               []string        `json:"audience"`
	TrustedProxy           bool            `json:"trusted_proxy"`
	JWKS                   json.RawMessage `json:"jwks,omitempty"`
	// CertificateBound requires its access tokens to be bound to its TLS
	// client certificate (RFC 8705 §3).
	CertificateBound bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// AccessTokenFormat is "jwt" (default) or "opaque".
	AccessTokenFormat string `json:"access_token_format,omitempty"`
	// Lifetimes as Go durations ("5m"); zero or absent: the server's.
	AccessTokenTTL     Duration `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL    Duration `json:"refresh_token_ttl,omitempty"`
	RefreshAbsoluteTTL Duration `json:"refresh_absolute_ttl,omitempty"`
	// ExchangeAudiences it may request by token exchange (RFC 8693).
	ExchangeAudiences []string `json:"exchange_audiences,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// CreatedClient answers POST /v1/clients. Secret is shown this once.
type CreatedClient struct {
	Client Client `json:"client"`
	Secret string `json:"client_secret,omitempty"`
}

// NewJoinToken is the body of POST /v1/join-tokens.
type NewJoinToken struct {
	// Name is the service, whose client ID it is: its certificate's SPIFFE
	// ID is spiffe://<trust-domain>/svc/<name>.
	Name string `json:"name"`
	// TTL is how long the token may be used; zero or absent: 1h. At most
	// 7 days.
	TTL Duration `json:"ttl,omitempty"`
}

// JoinToken answers POST /v1/join-tokens. Token is shown this once.
type JoinToken struct {
	Name      string    `json:"name"`
	Token     string    `json:"join_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Key states.
const (
	KeyPending = "pending" // published, not yet signing
	KeyActive  = "active"  // signing
	KeyRetired = "retired" // no longer signing, still published
	KeyExpired = "expired" // no longer published
)

// Key is a signing key's public record.
type Key struct {
	ID        string     `json:"kid"`
	Algorithm string     `json:"alg"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	ActiveAt  time.Time  `json:"active_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// RotateKey is the body of POST /v1/keys/rotate.
type RotateKey struct {
	// Algorithm of the new key: ES256, RS256 or EdDSA; if empty, the
	// server's configured algorithm.
	Algorithm string `json:"alg,omitempty"`
}

// Error is an admin API error response.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status.
	Status int `json:"-"`
}

// Error codes and the sentinel each stands for.
const (
	CodeUnauthorized   = "unauthorized"
	CodeInvalidRequest = "invalid_request"
	CodeNotFound       = "not_found"
	CodeConflict       = "conflict"
	CodeServerError    = "server_error"
)

func (e *Error) Error() string {
	if e.Description == "" {
		return "admin API: " + e.Code
	}
	return "admin API: " + e.Description
}

// Unwrap returns the sentinel for the error's code, so errors.Is works on
// what Remote returns.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeUnauthorized:
		return ErrUnauthorized
	case CodeInvalidRequest:
		return ErrInvalid
	case CodeNotFound:
		return ErrNotFound
	case CodeConflict:
		return ErrConflict
	}
	return nil
}
