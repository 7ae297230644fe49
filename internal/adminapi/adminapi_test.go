package adminapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recorder is a Service that records the arguments it gets and fails as
// told.
type recorder struct {
	Service // unimplemented methods panic, which the test would notice
	got     []string
	err     error
}

func (r *recorder) GetUser(_ context.Context, username string) (User, error) {
	r.got = append(r.got, username)
	return User{Username: username}, r.err
}

func (r *recorder) RevokeSession(_ context.Context, username, sid string) error {
	r.got = append(r.got, username, sid)
	return r.err
}

func TestRemoteAndHandler(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(NewHandler(rec, "the-token", slog.New(slog.DiscardHandler)))
	defer srv.Close()
	c := &Remote{URL: srv.URL + "/", Token: "the-token"}
	ctx := t.Context()
	for _, name := range []string{"alice", "o'neil@example.com", "a b", "x/y", "%2F"} {
		u, err := c.GetUser(ctx, name)
		if err != nil || u.Username != name || rec.got[len(rec.got)-1] != name {
			t.Errorf("GetUser(%q): got %+v, %v, service saw %q", name, u, err, rec.got[len(rec.got)-1])
		}
	}
	if err := c.RevokeSession(ctx, "bob", "s/1"); err != nil || rec.got[len(rec.got)-2] != "bob" || rec.got[len(rec.got)-1] != "s/1" {
		t.Errorf("RevokeSession: got %v, service saw %v", err, rec.got)
	}
	for _, tt := range []struct {
		err    error
		want   error
		status int
	}{
		{fmt.Errorf("user x: %w", ErrNotFound), ErrNotFound, 404},
		{fmt.Errorf("%w: bad", ErrInvalid), ErrInvalid, 400},
		{fmt.Errorf("user x: %w", ErrConflict), ErrConflict, 409},
		{errors.New("database password is hunter2"), nil, 500},
	} {
		rec.err = tt.err
		_, err := c.GetUser(ctx, "x")
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status != tt.status || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("service error %v: got %v, want status %d", tt.err, err, tt.status)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("an internal error reached the caller: %v", err)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/nothing")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown path without a token: got %v, %v, want 401 before anything else", resp.Status, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/nothing", nil)
	req.Header.Set("Authorization", "Bearer the-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path with the token: got %v, %v, want 404", resp.Status, err)
	}
	resp.Body.Close()
}
