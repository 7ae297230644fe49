package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// How revocation works, for each kind of token.
//
// Refresh tokens and opaque access tokens are records in the store: revoking
// one marks its record, and revoking a session (a refresh-token family)
// marks every refresh token and opaque access token of the family.
//
// A JWT access token is no record: its signature keeps it valid until it
// expires. To revoke one earlier — alone, or with its session — the server
// stores a revocation marker: a store.AccessToken record whose hash is the
// keyed hash (keyring.PurposeRevocation) of "jti:<jti>" for one token or
// "sid:<family>" for a session, and whose ExpiresAt is the last moment a
// token it covers could still be accepted. Introspection looks up the
// markers of a token's jti and sid, two primary-key reads; DeleteExpired
// removes a marker once every token it covers has expired, so markers are
// bounded by live tokens, not by history. They live in the store, so every
// replica sees them at once. Their hash key is derived for that purpose
// alone, so no presented opaque token can ever hash to a marker.
//
// Every revocation also appends one event (package secevent) to the store's
// log: that is how resource servers that verify JWTs on their own learn of
// it. A marker doubles as the record that its event was written, so
// revoking the same token or session again writes no second event.

// revocation says who revoked something and why, for the event's details.
type revocation struct {
	initiator string // a secevent.InitiatedBy constant
	reason    string
}

var (
	revokedByClient = revocation{secevent.InitiatedByUser, "revoked by the client (RFC 7009)"}
	reuseDetected   = revocation{secevent.InitiatedByPolicy, "refresh token reuse detected"}
)

func (r revocation) details() []byte {
	b, _ := json.Marshal(secevent.Details{InitiatingEntity: r.initiator, ReasonAdmin: map[string]string{"en": r.reason}})
	return b
}

// endSession revokes the session rt belongs to: every refresh token and
// opaque access token of its family, and, by a marker, its JWT access
// tokens. It records a session-revoked event the first time. c is the
// session's client.
func (s *Server) endSession(ctx context.Context, c store.Client, rt store.RefreshToken, why revocation) error {
	now := s.cfg.Now().UTC()
	if _, err := s.cfg.Store.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	if _, err := s.cfg.Store.RevokeFamilyAccessTokens(ctx, rt.FamilyID, now); err != nil {
		return fmt.Errorf("revoke opaque access tokens of family: %w", err)
	}
	// A token of the session minted just now lives accessTTL; exchanged
	// tokens never outlive their subject token.
	until := now.Add(s.accessTTL(c) + jose.DefaultLeeway)
	return s.mark(ctx, sessionMarker(rt.FamilyID), until, why, store.Event{
		Type: secevent.SessionRevoked, Subject: rt.UserID, SessionID: rt.FamilyID, ClientID: rt.ClientID,
	})
}

// revokeAccessToken revokes one access token, opaque or JWT, and records a
// token-revoked event the first time.
func (s *Server) revokeAccessToken(ctx context.Context, t *foundToken, why revocation) error {
	e := store.Event{Type: secevent.TokenRevoked, Subject: t.claims.Subject, SessionID: t.claims.SessionID,
		ClientID: t.claims.ClientID, TokenID: t.claims.ID}
	if t.opaque == nil {
		return s.mark(ctx, tokenMarker(t.claims.ID), t.claims.Expiry.Time().Add(jose.DefaultLeeway), why, e)
	}
	if t.opaque.RevokedAt != nil {
		return nil
	}
	now := s.cfg.Now().UTC()
	err := s.cfg.Store.RevokeAccessToken(ctx, t.opaque.Hash, now)
	if errors.Is(err, store.ErrNotFound) { // collected since it was read
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke opaque access token: %w", err)
	}
	return s.appendEvent(ctx, e, why, now)
}

// tokenMarker and sessionMarker name the revocation markers of one JWT
// and of one session.
func tokenMarker(jti string) string   { return "jti:" + jti }
func sessionMarker(sid string) string { return "sid:" + sid }

// mark stores the revocation marker key until until and appends e, unless
// the marker exists already. The event is written first: should the marker
// fail, a retry writes the event again rather than never.
func (s *Server) mark(ctx context.Context, key string, until time.Time, why revocation, e store.Event) error {
	hash := s.revocationHasher.Hash(key)
	_, err := s.cfg.Store.GetAccessToken(ctx, hash)
	if err == nil {
		return nil // revoked, and recorded, before
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("get revocation marker: %w", err)
	}
	now := s.cfg.Now().UTC()
	if err := s.appendEvent(ctx, e, why, now); err != nil {
		return err
	}
	return s.putMarker(ctx, hash, until, e.ClientID, e.Subject, now)
}

// putMarker stores the revocation marker with that hash until until; one
// already there is kept.
func (s *Server) putMarker(ctx context.Context, hash string, until time.Time, clientID, subject string, now time.Time) error {
	err := s.cfg.Store.CreateAccessToken(ctx, store.AccessToken{
		Hash: hash, ClientID: clientID, Subject: subject, Claims: []byte(`{}`),
		CreatedAt: now, ExpiresAt: until.UTC(), RevokedAt: &now,
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("store revocation marker: %w", err)
	}
	return nil
}

// markSessionRevoked stores the marker of a session the Admin revoked (it
// records the event itself), so that introspection refuses the session's
// JWT access tokens as the receivers of that event do.
func (s *Server) markSessionRevoked(ctx context.Context, userID, clientID, familyID string) error {
	c, err := s.clients.get(ctx, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("get client: %w", err)
	}
	now := s.cfg.Now().UTC()
	until := now.Add(s.accessTTL(c) + jose.DefaultLeeway) // as in endSession
	return s.putMarker(ctx, s.revocationHasher.Hash(sessionMarker(familyID)), until, clientID, userID, now)
}

func (s *Server) appendEvent(ctx context.Context, e store.Event, why revocation, now time.Time) error {
	e.Data, e.CreatedAt = why.details(), now
	id, err := s.cfg.Store.AppendEvent(ctx, e)
	if err != nil {
		return fmt.Errorf("append %s event: %w", e.Type, err)
	}
	s.audit(ctx, "revocation", "event_id", id, "type", e.Type, "sub", e.Subject, "sid", e.SessionID,
		"client_id", e.ClientID, "jti", e.TokenID, "reason", why.reason)
	return nil
}

// revoked reports whether a marker covers the access token with claims c:
// its session's marker, and, for a JWT, its own.
func (s *Server) revoked(ctx context.Context, c *jose.Claims, jwt bool) (bool, error) {
	var keys []string
	if jwt && c.ID != "" {
		keys = append(keys, tokenMarker(c.ID))
	}
	if c.SessionID != "" {
		keys = append(keys, sessionMarker(c.SessionID))
	}
	for _, k := range keys {
		_, err := s.cfg.Store.GetAccessToken(ctx, s.revocationHasher.Hash(k))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("get revocation marker: %w", err)
		}
	}
	return false, nil
}
