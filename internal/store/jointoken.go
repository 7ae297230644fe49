package store

import (
	"context"
	"time"
)

// JoinToken is a one-time token that lets a service obtain its first
// certificate from the issuance endpoint without any other credential
// (docs/mtls.md). It is stored by its keyed hash and names the service it
// was created for.
type JoinToken struct {
	Hash string // keyed hash of the token; the primary key
	// Name is the service (and client ID) the token admits: the
	// certificate's SPIFFE ID is spiffe://<trust-domain>/svc/<Name>.
	Name      string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set by the one use the token allows.
	UsedAt *time.Time
}

// JoinTokens is the part of Store that keeps join tokens.
type JoinTokens interface {
	// CreateJoinToken stores a new token; ErrAlreadyExists if the hash is
	// taken.
	CreateJoinToken(ctx context.Context, t JoinToken) error
	// GetJoinToken returns the token with that hash, used or not, or
	// ErrNotFound.
	GetJoinToken(ctx context.Context, hash string) (JoinToken, error)
	// UseJoinToken atomically uses the token with that hash at now and
	// returns it as stored before:
	//   - unknown hash: ErrNotFound;
	//   - already used: ErrReused;
	//   - expired at now: ErrInactive;
	//   - otherwise: marks it used and returns it with a nil error.
	// Of concurrent uses of one token exactly one succeeds.
	UseJoinToken(ctx context.Context, hash string, now time.Time) (JoinToken, error)
}
