package authserver

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(w, r); err != nil {
		oauth.WriteError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revoke is RFC 7009 §2. The answer is 200 whenever the client
// authenticated and named a token (§2.2): for a token revoked now, one that
// was revoked or expired already, one that is not ours or malformed, and one
// issued to another client, which is left alone — so the endpoint never
// tells a client whether another client's token exists. Every kind of token
// the server issues can be revoked, so unsupported_token_type (§2.2.1) is
// never sent; a hint only orders the search and an unknown hint is ignored
// (§2.1).
//
// Revoking a refresh token ends its session: the whole family and every
// access token of it (§2.1 lets the server do both). Revoking an access
// token revokes that token only.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	client, form, err := s.clientRequest(w, r)
	if err != nil {
		return err
	}
	raw := form.Get("token")
	if raw == "" {
		return oauth.Errorf(oauth.ErrInvalidRequest, "missing token")
	}
	ctx := r.Context()
	t, err := s.findToken(ctx, raw, form.Get("token_type_hint"))
	if err != nil {
		return s.internal(ctx, "find token to revoke", err)
	}
	if t == nil {
		return nil
	}
	if t.claims.ClientID != client.ID {
		s.audit(ctx, "revocation of another client's token ignored", "client_id", client.ID,
			"token_client_id", t.claims.ClientID, "token_use", t.use)
		return nil
	}
	if t.refresh != nil {
		err = s.endSession(ctx, client, *t.refresh, revokedByClient)
	} else {
		err = s.revokeAccessToken(ctx, t, revokedByClient)
	}
	if err != nil {
		return s.internal(ctx, "revoke", err)
	}
	return nil
}
