package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Authorization codes (RFC 6749 §4.1.2): 256 random bits, stored only as a
// keyed hash, valid for a minute, redeemable once.
const (
	codeBytes   = 32
	authCodeTTL = 60 * time.Second
	// replayMarkerTTL is how long the marker that links a code's
	// redemptions (see authorizationCodeGrant) is kept: longer than any
	// request that can race with the redemption.
	replayMarkerTTL = 10 * time.Minute
)

// pkceS256 is the only code_challenge_method accepted (RFC 9700 §2.1.1:
// "plain" would expose the verifier to whoever sees the request).
const pkceS256 = "S256"

// authorizationCodeGrant is RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
//
// A code has exactly one attempt: it is redeemed atomically before its
// bindings (client, redirect URI, code verifier) are checked, so a wrong
// verifier cannot be retried. Presenting it again fails and ends the
// session the first redemption started (RFC 6749 §4.1.2, RFC 9700 §4.2.4),
// however late: the store keeps a redeemed code while that session lives.
func (s *Server) authorizationCodeGrant(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	code, redirectURI, verifier := req.form.Get("code"), req.form.Get("redirect_uri"), req.form.Get("code_verifier")
	switch {
	case code == "":
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing code")
	case redirectURI == "":
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing redirect_uri")
	case req.form.Has("code_verifier") && !validVerifier(verifier):
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "code_verifier must be 43 to 128 unreserved characters")
	}
	invalid := oauth.Errorf(oauth.ErrInvalidGrant, "authorization code is invalid, expired or already used")
	now := s.cfg.Now().UTC()
	family := keyring.RandomToken(16)
	ac, err := s.cfg.Store.RedeemAuthCode(ctx, s.codeHasher.Hash(code), now, family)
	switch {
	case errors.Is(err, store.ErrReused):
		s.revokeReplayedCode(ctx, ac, now)
		return nil, invalid
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInactive):
		return nil, invalid
	case err != nil:
		return nil, s.internal(ctx, "redeem authorization code", err)
	}
	if err := checkCodeBinding(ac, req.client, redirectURI, verifier); err != nil {
		s.audit(ctx, "authorization code rejected", "client_id", req.client.ID, "reason", err.Error())
		return nil, invalid
	}
	u, err := s.cfg.Store.GetUserByID(ctx, ac.UserID)
	// A code issued before the user's tokens were last ended (a password
	// change, say) was issued to a login that ended with them.
	if errors.Is(err, store.ErrNotFound) || err == nil && !issuedForCurrentUser(u, ac.CreatedAt) {
		return nil, invalid
	}
	if err != nil {
		return nil, s.internal(ctx, "get user", err)
	}
	resp, err := s.issueSession(ctx, req.client, u, ac.Scopes, login{family: family, authTime: ac.AuthTime, nonce: ac.Nonce})
	if err != nil {
		return nil, err
	}
	s.markRedeemed(ctx, ac, family, now)
	return resp, nil
}

// checkCodeBinding checks what a code is bound to (RFC 6749 §4.1.3,
// RFC 7636 §4.6). A public client's code always has a challenge; a code
// without one must not be redeemed with a verifier (RFC 9700 §2.1.1, against
// PKCE downgrade). A code issued before its client was last disabled was
// revoked with the client's tokens.
func checkCodeBinding(ac store.AuthCode, c store.Client, redirectURI, verifier string) error {
	switch {
	case ac.ClientID != c.ID:
		return errors.New("issued to another client")
	case !issuedWhileEnabled(c, ac.CreatedAt):
		return errors.New("issued before the client was disabled")
	case ac.RedirectURI != redirectURI:
		return errors.New("redirect_uri differs")
	case ac.CodeChallenge == "" && (verifier != "" || c.Public):
		return errors.New("code has no PKCE challenge")
	case ac.CodeChallenge != "" && (ac.CodeChallengeMethod != pkceS256 || !verifyS256(ac.CodeChallenge, verifier)):
		return errors.New("code_verifier does not match")
	}
	return nil
}

// verifyS256 compares BASE64URL(SHA256(verifier)) with challenge in
// constant time (RFC 7636 §4.6).
func verifyS256(challenge, verifier string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// validVerifier: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "."
// / "_" / "~" (RFC 7636 §4.1).
func validVerifier(v string) bool {
	return len(v) >= 43 && len(v) <= 128 && unreserved(v)
}

// validChallenge: an S256 challenge is the 43-character base64url encoding
// of a SHA-256 hash (RFC 7636 §4.2).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func unreserved(v string) bool {
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
		default:
			return false
		}
	}
	return true
}

// The replay marker closes the race between a redemption and a replay of
// its code: the replay may revoke the family before the first redemption
// has stored its refresh token, which would then survive. Both sides take
// the one-time identifier replayMarker(family); whoever comes second revokes
// the family, after the first redemption's tokens are stored.

func replayMarker(family string) string { return "authorization-code-session:" + family }

// markRedeemed is called once the first redemption's tokens are stored.
func (s *Server) markRedeemed(ctx context.Context, ac store.AuthCode, family string, now time.Time) {
	err := s.cfg.Store.UseJTI(ctx, replayMarker(family), now.Add(replayMarkerTTL), now)
	switch {
	case errors.Is(err, store.ErrAlreadyExists): // a replay came first
		ac.FamilyID = family
		s.endCodeSession(ctx, ac)
	case err != nil:
		s.cfg.Logger.ErrorContext(ctx, "mark authorization code redeemed", "sid", family, "err", err)
	}
}

// revokeReplayedCode revokes what the first redemption of ac issued.
func (s *Server) revokeReplayedCode(ctx context.Context, ac store.AuthCode, now time.Time) {
	s.cfg.Logger.WarnContext(ctx, "authorization code replayed; session revoked", "audit", true,
		"client_id", ac.ClientID, "sub", ac.UserID, "sid", ac.FamilyID)
	if ac.FamilyID == "" {
		return
	}
	err := s.cfg.Store.UseJTI(ctx, replayMarker(ac.FamilyID), now.Add(replayMarkerTTL), now)
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		s.cfg.Logger.ErrorContext(ctx, "mark authorization code replayed", "sid", ac.FamilyID, "err", err)
	}
	s.endCodeSession(ctx, ac)
}

// codeReplayed is why a replayed code's session ends.
var codeReplayed = revocation{secevent.InitiatedByPolicy, "authorization code replayed"}

// endCodeSession ends the session ac's first redemption started, as
// logout would: its refresh and opaque access tokens are revoked, its JWT
// access tokens covered by a revocation marker, and receivers told by a
// session-revoked event. It logs what fails: the replay is refused anyway.
func (s *Server) endCodeSession(ctx context.Context, ac store.AuthCode) {
	c, err := s.clients.get(ctx, ac.ClientID)
	if err != nil { // the default lifetime still covers most tokens
		s.cfg.Logger.ErrorContext(ctx, "get client of replayed authorization code", "client_id", ac.ClientID, "err", err)
		c = store.Client{ID: ac.ClientID}
	}
	rt := store.RefreshToken{FamilyID: ac.FamilyID, ClientID: ac.ClientID, UserID: ac.UserID}
	if err := s.endSession(ctx, c, rt, codeReplayed); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "end session of replayed authorization code", "sid", ac.FamilyID, "err", err)
	}
}
