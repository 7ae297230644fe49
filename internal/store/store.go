// Package store is Gatehouse's persistence: one Store interface with an embedded
// SQLite implementation (package sqlite) and a PostgreSQL one (package postgres)
// for several replicas. Both run the same conformance suite (package storetest).
//
// Records never hold a secret in clear: passwords are argon2id hashes, client
// secrets and refresh tokens are keyed hashes computed by the caller, and
// private signing keys are sealed by the caller before they reach the store.
//
// Every method takes a context first and reports conditions callers branch on
// with the sentinel errors below, checked with errors.Is. Updates that must not
// race (refresh-token rotation, user changes) are atomic in the database, so
// they stay correct across several authorization-server replicas.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned by every Store implementation.
var (
	// ErrNotFound: no record has that key.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a record with that unique key exists.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrInactive: the refresh token exists but is revoked or expired.
	ErrInactive = errors.New("store: token inactive")
	// ErrReused: a rotated refresh token was presented again outside the grace
	// window; its whole family has been revoked as a consequence.
	ErrReused = errors.New("store: refresh token reused")
)

// User is an end user who can log in with a password.
type User struct {
	ID           string // stable subject identifier (the sub claim); set by the caller
	Username     string // unique login name
	PasswordHash string // argon2id hash in PHC string format
	Roles        []string
	Disabled     bool
	// TokensNotBefore is the last time the user's outstanding access tokens
	// were ended (password changed, disabled, roles changed, all sessions
	// revoked); nil if never. An access token for the user issued at or
	// before it is refused, whether the user is enabled or not, just as SSF
	// receivers refuse it after the event of that change.
	TokensNotBefore *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Access-token formats a client may be configured for.
const (
	FormatJWT    = "jwt"
	FormatOpaque = "opaque"
)

// Client is an OAuth 2.0 client registration.
type Client struct {
	ID string
	// SecretHash is the keyed hash of the client secret; empty for public clients.
	SecretHash string
	// Public marks a client that cannot keep a secret (authenticates with "none").
	Public       bool
	Grants       []string // allowed grant types
	Scopes       []string // scopes the client may request
	RedirectURIs []string
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout (OpenID Connect RP-Initiated Logout 1.0
	// §3.1, post_logout_redirect_uris); compared exactly.
	PostLogoutRedirectURIs []string
	Audience               []string // audience of its access tokens; empty means the server default
	// AccessTokenFormat is FormatJWT or FormatOpaque; empty means FormatJWT.
	AccessTokenFormat string
	// AuthMethod is the registered token_endpoint_auth_method (RFC 7591
	// §2): one of the Auth* constants. Empty means AuthClientSecretBasic for
	// a confidential client and AuthNone for a public one.
	AuthMethod string
	// JWKS holds the client's public keys (a JWKS document) for
	// AuthPrivateKeyJWT; nil otherwise.
	JWKS []byte
	// Lifetimes of its tokens; zero means the server default.
	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration // idle
	RefreshAbsoluteTTL time.Duration
	// ExchangeAudiences lists the audiences the client may request in a
	// token exchange (RFC 8693).
	ExchangeAudiences []string
	// TrustedProxy marks a client (such as the gateway) whose requests may
	// name the end user's network address for login throttling.
	TrustedProxy bool
	// CertificateBound requires every access token of the client to be
	// bound to its TLS client certificate (RFC 8705 §3,
	// tls_client_certificate_bound_access_tokens): token requests without
	// one are refused.
	CertificateBound bool
	Disabled         bool
	// DisabledAt is when the client was last disabled; nil if never. The
	// tokens issued to it up to then stay invalid once it is enabled again.
	DisabledAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Client authentication methods (RFC 7591 §2 token_endpoint_auth_method).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none"
	// AuthTLSClientAuth is RFC 8705 §2.1: the client authenticates with a
	// certificate of the server's trust bundle naming its SPIFFE ID.
	AuthTLSClientAuth = "tls_client_auth"
)

// RefreshToken is one refresh token of a family (a login session). Rotation
// creates a successor in the same family and marks the predecessor rotated.
type RefreshToken struct {
	Hash      string // keyed hash of the token; the primary key
	FamilyID  string // shared by every token descended from one grant; the session id
	ClientID  string
	UserID    string
	Scopes    []string
	AuthTime  time.Time // when the user authenticated; start of the family
	CreatedAt time.Time
	ExpiresAt time.Time
	// RotatedAt is set once the token has been exchanged for its successor.
	RotatedAt *time.Time
	// SuccessorHash names the token that replaced this one.
	SuccessorHash string
	RevokedAt     *time.Time
}

// Active reports whether the token can still be used at now: neither revoked,
// nor rotated, nor expired.
func (t RefreshToken) Active(now time.Time) bool {
	return t.RevokedAt == nil && t.RotatedAt == nil && now.Before(t.ExpiresAt)
}

// SigningKey is a key the authorization server signs tokens with.
type SigningKey struct {
	ID        string // the kid
	Algorithm string // JOSE algorithm: ES256, RS256, EdDSA
	// PublicJWK is the public key as a JSON Web Key, as published in the JWKS.
	PublicJWK []byte
	// SealedPrivate is the private key encrypted by the caller (never in clear).
	SealedPrivate []byte
	CreatedAt     time.Time
	// ActiveAt is when the key may start signing; it is published before that.
	ActiveAt time.Time
	// RetiredAt, when set, is when the key stopped signing.
	RetiredAt *time.Time
	// ExpiresAt, when set, is when the key leaves the JWKS: every token it
	// signed has expired by then.
	ExpiresAt *time.Time
}

// AuthCode is an authorization code (RFC 6749 §4.1), stored by its keyed hash.
type AuthCode struct {
	Hash                string
	ClientID            string
	UserID              string
	RedirectURI         string
	Scopes              []string
	Nonce               string // OIDC nonce, echoed in the ID token
	CodeChallenge       string // PKCE (RFC 7636)
	CodeChallengeMethod string // "S256"
	AuthTime            time.Time
	CreatedAt           time.Time
	ExpiresAt           time.Time
	// RedeemedAt is set by the first redemption.
	RedeemedAt *time.Time
	// FamilyID names the refresh-token family (session) the first redemption
	// issued, so a second redemption can revoke what it issued (RFC 6749 §4.1.2).
	FamilyID string
}

// AccessToken is an opaque access token, stored by its keyed hash, with the
// claims a JWT would have carried (for introspection and phantom tokens).
type AccessToken struct {
	Hash      string
	ClientID  string
	Subject   string
	FamilyID  string // the session it belongs to; empty for client_credentials
	Claims    []byte // JSON object of the token's claims
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// Event is a security event (a session revoked, a credential changed, ...)
// in an append-only log with increasing IDs. It never holds a secret.
type Event struct {
	ID        int64 // assigned by AppendEvent; strictly increasing
	Type      string
	Subject   string // the user ID or client ID the event is about, if any
	SessionID string // the refresh family, if any
	ClientID  string
	TokenID   string // a jti, if the event is about one token
	Data      []byte // a JSON object with details, or nil
	CreatedAt time.Time
}

// Session summarizes a refresh-token family: one login of a user at a client.
type Session struct {
	FamilyID  string
	ClientID  string
	UserID    string
	Scopes    []string
	AuthTime  time.Time
	LastUsed  time.Time // CreatedAt of its newest token
	ExpiresAt time.Time // ExpiresAt of its newest token
	Revoked   bool
}

// Throttle is the failed-login state of one key, such as "user:alice" or
// "addr:192.0.2.7".
type Throttle struct {
	Key         string
	Failures    int
	LastFailure time.Time
	LockedUntil time.Time
}

// Rotation describes a refresh-token rotation that the store carried out.
type Rotation struct {
	// Old is the presented token as it was before the rotation.
	Old RefreshToken
	// Successor is the token that replaces Old.
	Successor RefreshToken
	// Replayed is true when Old had already been rotated within the grace
	// window and Successor is the one created then (no second successor).
	Replayed bool
}

// Store is implemented by sqlite.Store and postgres.Store. Implementations are
// safe for concurrent use.
type Store interface {
	// CreateUser inserts u; ErrAlreadyExists if the username or ID is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with that username, or ErrNotFound.
	GetUser(ctx context.Context, username string) (User, error)
	// GetUserByID returns the user with that ID, or ErrNotFound.
	GetUserByID(ctx context.Context, id string) (User, error)
	// ListUsers returns every user ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies update to the user named username atomically and
	// stores the result (ID and Username cannot change). If update returns an
	// error nothing is written and that error is returned.
	UpdateUser(ctx context.Context, username string, update func(*User) error) (User, error)

	// CreateClient inserts c; ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns the client with that ID, or ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies update atomically, like UpdateUser.
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (Client, error)

	// CreateRefreshToken inserts the first token of a family (or any token
	// whose hash is new); ErrAlreadyExists if the hash is taken.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns the token with that hash, or ErrNotFound.
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken atomically exchanges the token with hash for next
	// (which must be in the same family) at time now:
	//   - unknown hash: ErrNotFound;
	//   - revoked, or expired at now: ErrInactive;
	//   - not yet rotated: marks it rotated, stores next, returns the rotation;
	//   - rotated no longer ago than grace (a grace of zero or less allows no
	//     replay), and its successor neither rotated nor revoked: returns that
	//     successor with Replayed set, storing nothing;
	//   - otherwise (reuse): revokes the whole family, commits that, and
	//     returns ErrReused.
	RotateRefreshToken(ctx context.Context, hash string, next RefreshToken, now time.Time, grace time.Duration) (Rotation, error)
	// RevokeRefreshFamily revokes every token of the family at now and
	// returns how many tokens it revoked (0 if all were already revoked or
	// the family is unknown).
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error)

	// AddSigningKey stores k; ErrAlreadyExists if the ID is taken.
	AddSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every stored key ordered by CreatedAt.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKey applies update atomically, like UpdateUser.
	UpdateSigningKey(ctx context.Context, id string, update func(*SigningKey) error) (SigningKey, error)

	// ListSessions returns the refresh-token families of a user, newest
	// first, revoked ones included.
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// RevokeUserSessions revokes every refresh token of the user at now and
	// returns the IDs of the families that had a token it revoked.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time) ([]string, error)

	// CreateAuthCode stores a new code; ErrAlreadyExists if the hash is taken.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// RedeemAuthCode atomically redeems the code with that hash at now,
	// recording familyID, and returns the code as stored before:
	//   - unknown hash: ErrNotFound;
	//   - already redeemed, expired or not: ErrReused, with the code (its
	//     FamilyID names what the first redemption issued);
	//   - expired at now: ErrInactive;
	//   - otherwise: marks it redeemed and returns it with a nil error.
	// Of concurrent redemptions of one code exactly one succeeds.
	RedeemAuthCode(ctx context.Context, hash string, now time.Time, familyID string) (AuthCode, error)

	// GetConsent returns the scopes the user granted the client, or ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) ([]string, error)
	// PutConsent records (replacing any earlier one) the scopes the user
	// granted the client.
	PutConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error

	// CreateAccessToken stores an opaque access token; ErrAlreadyExists if
	// the hash is taken.
	CreateAccessToken(ctx context.Context, t AccessToken) error
	// GetAccessToken returns the opaque token with that hash, or ErrNotFound.
	GetAccessToken(ctx context.Context, hash string) (AccessToken, error)
	// RevokeAccessToken revokes one opaque token; ErrNotFound if unknown.
	RevokeAccessToken(ctx context.Context, hash string, now time.Time) error
	// RevokeFamilyAccessTokens revokes the opaque tokens of a session and
	// returns how many it revoked. An empty familyID names no session: it
	// revokes nothing (not the client_credentials tokens) and returns 0.
	RevokeFamilyAccessTokens(ctx context.Context, familyID string, now time.Time) (int, error)

	// AppendEvent appends e (its ID is ignored) and returns the ID given to
	// it, greater than every earlier one.
	AppendEvent(ctx context.Context, e Event) (int64, error)
	// ListEvents returns at most limit events with IDs greater than afterID,
	// in ID order.
	ListEvents(ctx context.Context, afterID int64, limit int) ([]Event, error)

	// RecordLoginFailure atomically counts a failed login for key at now and
	// returns the new state: Failures restarts at 1 when the last failure is
	// older than window, and LockedUntil becomes now+lockFor(Failures) when
	// lockFor returns more than zero (otherwise it is kept).
	RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, lockFor func(failures int) time.Duration) (Throttle, error)
	// GetThrottle returns the state of key; a zero Throttle (with Key set)
	// when there is none.
	GetThrottle(ctx context.Context, key string) (Throttle, error)
	// ResetThrottle forgets the failures of key.
	ResetThrottle(ctx context.Context, key string) error

	// UseJTI records a one-time identifier (such as a client assertion's
	// jti) until expiresAt; ErrAlreadyExists if it is recorded and has not
	// expired at now.
	UseJTI(ctx context.Context, id string, expiresAt, now time.Time) error

	// JoinTokens keeps the one-time tokens of the issuance endpoint.
	JoinTokens

	// DeleteExpired removes what can no longer be used at now: expired
	// refresh tokens, opaque access tokens, one-time identifiers, join
	// tokens and throttle states (a state expires once its last failure is
	// older than the window RecordLoginFailure was given and its lock has
	// passed), and events created before eventsBefore. An expired
	// authorization code goes if it was never redeemed; a redeemed one is
	// kept for its replays to revoke what it issued (RFC 6749 §4.1.2) until
	// it expired before eventsBefore and no refresh token of its family is
	// unrevoked and unexpired at now. It returns how many records it removed.
	DeleteExpired(ctx context.Context, now, eventsBefore time.Time) (int64, error)

	// Close releases the store's connections.
	Close() error
}
