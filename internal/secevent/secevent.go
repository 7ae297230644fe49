// Package secevent names the security events Gatehouse records in its
// append-only event log (store.Event) and delivers as Security Event Tokens
// (RFC 8417): the event types of the OpenID Continuous Access Evaluation
// Profile 1.0 (CAEP) that Gatehouse emits, its own types for what CAEP lacks,
// and the optional CAEP members an event carries as details.
//
// A type string is stored in store.Event.Type and goes unchanged into a
// SET's "events" claim, so receivers — Gatehouse's own and third-party ones —
// match on these exact values.
package secevent

// caep is the prefix of CAEP 1.0 event types (CAEP §3).
const caep = "https://schemas.openid.net/secevent/caep/event-type/"

// CAEP 1.0 event types Gatehouse emits.
const (
	// SessionRevoked (CAEP §3.1): a session ended before its time. In
	// Gatehouse a session is a refresh-token family, so every revocation
	// of a family emits it: the client revoked a refresh token (logout,
	// RFC 7009), reuse of a rotated refresh token was detected
	// (RFC 9700 §4.14.2), an administrator revoked a session. Its
	// store.Event names the family in SessionID and the user in Subject.
	SessionRevoked = caep + "session-revoked"
	// CredentialChange (CAEP §3.3): a password or client secret changed.
	CredentialChange = caep + "credential-change"
	// TokenClaimsChange (CAEP §3.2): claims of issued tokens, such as
	// roles, changed.
	TokenClaimsChange = caep + "token-claims-change"
)

// own is the prefix of Gatehouse's event types, for what CAEP does not name.
const own = "https://gatehouse-dev.github.io/secevent/event-type/"

// Gatehouse's own event types.
const (
	// TokenRevoked: one access token was revoked (RFC 7009) before it
	// expired, without ending its session. Its store.Event names the token
	// in TokenID (the jti), and its session, if any, in SessionID.
	TokenRevoked = own + "token-revoked"
	// KeyRetired: stop trusting tokens signed with this key, now. An
	// administrator revoked the signing key (it left the JWKS at once);
	// receivers refuse every token whose header names its kid. A key
	// retired by an ordinary rotation emits no event: it stays trusted
	// until its tokens expire. Its store.Event carries the key ID in its
	// details ("kid"), which the SET names as an opaque subject.
	KeyRetired = own + "key-retired"
	// ClientDisabled: a client was disabled; tokens issued to it before the
	// event must be refused. Its store.Event names the client in ClientID
	// and Subject.
	ClientDisabled = own + "client-disabled"
)

// Other event types Gatehouse emits or sends.
const (
	// AccountDisabled (OpenID RISC 1.0 §2.3): a user was disabled.
	AccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	// Verification (OpenID SSF 1.0 §8.1.4): sent on a stream when its
	// receiver asks, to prove the stream works; never stored.
	Verification = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// Supported lists the types of the events Gatehouse stores, in the order
// the transmitter announces them.
var Supported = []string{SessionRevoked, CredentialChange, TokenClaimsChange, AccountDisabled,
	TokenRevoked, KeyRetired, ClientDisabled}

// Who initiated an event: the values of CAEP's initiating_entity (CAEP §2).
const (
	InitiatedByAdmin  = "admin"
	InitiatedByUser   = "user"
	InitiatedByPolicy = "policy"
	InitiatedBySystem = "system"
)

// Details are the optional members common to CAEP events (CAEP §2), stored
// as the JSON of store.Event.Data. They never hold a secret or a token.
type Details struct {
	// InitiatingEntity is one of the InitiatedBy constants.
	InitiatingEntity string `json:"initiating_entity,omitempty"`
	// ReasonAdmin is a reason for administrators, keyed by language tag
	// ("en").
	ReasonAdmin map[string]string `json:"reason_admin,omitempty"`
}
