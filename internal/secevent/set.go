package secevent

import "encoding/json"

// SET is the payload of a Security Event Token (RFC 8417 §2) as the OpenID
// Shared Signals Framework 1.0 profiles it: the subject is in "sub_id" (a
// subject identifier, RFC 9493), "events" has one member, and there is no
// "exp" (RFC 8417 §2.2).
type SET struct {
	Issuer   string   `json:"iss"`
	IssuedAt int64    `json:"iat"`
	ID       string   `json:"jti"`
	Audience []string `json:"aud"`
	// TxN is the transaction identifier (RFC 8417 §2.2 "txn"): the event's
	// ID in the log, the same on every stream it is delivered on.
	TxN     string     `json:"txn,omitempty"`
	Subject *SubjectID `json:"sub_id,omitempty"`
	// Events maps the one event type to its payload: a JSON object.
	Events map[string]json.RawMessage `json:"events"`
}

// Subject identifier formats (RFC 9493 §3, SSF 1.0 §3).
const (
	FormatOpaque  = "opaque"
	FormatIssSub  = "iss_sub"
	FormatEmail   = "email"
	FormatComplex = "complex"
)

// SubjectID is a subject identifier (RFC 9493 §3). Gatehouse names a user
// by iss_sub, a session, a token (its jti) or a client by opaque, and
// combines them with the complex format (SSF 1.0 §3.2).
type SubjectID struct {
	Format string `json:"format"`
	ID     string `json:"id,omitempty"`  // opaque
	Iss    string `json:"iss,omitempty"` // iss_sub
	Sub    string `json:"sub,omitempty"` // iss_sub
	Email  string `json:"email,omitempty"`
	// Members of the complex format.
	User        *SubjectID `json:"user,omitempty"`
	Session     *SubjectID `json:"session,omitempty"`
	Application *SubjectID `json:"application,omitempty"`
}

// EventPayload is the part of an event's payload Gatehouse's receivers
// read: CAEP's common members (CAEP §2) and the key ID of KeyRetired.
type EventPayload struct {
	// EventTimestamp is when the event happened, in seconds since the
	// epoch (CAEP §2 "event_timestamp").
	EventTimestamp int64 `json:"event_timestamp"`
	Details
	// State echoes the receiver's state in a Verification event.
	State string `json:"state,omitempty"`
	// KeyID names the key of a KeyRetired event.
	KeyID string `json:"kid,omitempty"`
}
