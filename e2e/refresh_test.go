package e2e

import (
	"errors"
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// wantInvalidGrant fails t unless err is the token endpoint's invalid_grant.
func wantInvalidGrant(t *testing.T, what string, tok *oauth2.Token, err error) {
	t.Helper()
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || re.ErrorCode != oauth.ErrInvalidGrant || re.Response.StatusCode != http.StatusBadRequest {
		t.Errorf("%s: got %v, %v, want 400 invalid_grant", what, tok, err)
	}
}

// TestRefreshTokenReuse: with the grace window off, a refresh token used a
// second time is refused and revokes its family, so the successor that the
// first use returned is refused too.
func TestRefreshTokenReuse(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *devstack.Options) { o.RefreshGrace = -1 })
	refresh := refresher(t, h.oauthConfig(t, "cli"))
	login := h.login(t, "cli", "alice")
	if login.RefreshToken == "" {
		t.Fatal("password grant returned no refresh token")
	}

	first, err := refresh(login.RefreshToken)
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	if first.RefreshToken == "" || first.RefreshToken == login.RefreshToken {
		t.Fatalf("first use: got refresh token %q, want a new one", first.RefreshToken)
	}
	if r := h.call(t, http.MethodGet, "/api/consumers/me", bearer(first.AccessToken), "", nil); r.status != http.StatusOK {
		t.Fatalf("refreshed access token: got %d %s, want 200", r.status, r.body)
	}

	tok, err := refresh(login.RefreshToken)
	wantInvalidGrant(t, "second use", tok, err)
	tok, err = refresh(first.RefreshToken)
	wantInvalidGrant(t, "successor after reuse", tok, err)

	// Another session of the same user is untouched.
	other := h.login(t, "cli", "alice")
	if _, err := refresh(other.RefreshToken); err != nil {
		t.Errorf("another family: got %v, want a refresh", err)
	}
}

// TestRefreshGraceRetry: within the grace window a retry with the old
// refresh token gets the same successor, and the family stays usable; once
// the successor has been used, the old token counts as reuse.
func TestRefreshGraceRetry(t *testing.T) {
	t.Parallel()
	h := start(t, nil) // default grace: 10s
	refresh := refresher(t, h.oauthConfig(t, "cli"))
	rt := h.login(t, "cli", "alice").RefreshToken

	first, err := refresh(rt)
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	retry, err := refresh(rt)
	if err != nil {
		t.Fatalf("retry within grace: %v", err)
	}
	if retry.RefreshToken != first.RefreshToken {
		t.Errorf("retry within grace: got refresh token %q, want the first successor %q", retry.RefreshToken, first.RefreshToken)
	}
	if r := h.call(t, http.MethodGet, "/api/consumers/me", bearer(retry.AccessToken), "", nil); r.status != http.StatusOK {
		t.Errorf("retry's access token: got %d %s, want 200", r.status, r.body)
	}

	next, err := refresh(first.RefreshToken)
	if err != nil {
		t.Fatalf("successor after retry: %v", err)
	}
	tok, err := refresh(rt)
	wantInvalidGrant(t, "old token after its successor was used", tok, err)
	tok, err = refresh(next.RefreshToken)
	wantInvalidGrant(t, "family after reuse", tok, err)
}
