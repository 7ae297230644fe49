package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// EnvToken is the environment variable that may hold the admin token, for
// the server and for the CLI.
const EnvToken = "GATEHOUSE_ADMIN_TOKEN"

// Remote is a Service reached over HTTP: it calls an admin API.
type Remote struct {
	// URL is the admin listener's base URL, e.g. http://127.0.0.1:9001.
	URL string
	// Token is the admin bearer token.
	Token string
	// HTTPClient; if nil, a client with a 30s timeout.
	HTTPClient *http.Client
}

// maxResponseBytes bounds what Remote reads from an answer.
const maxResponseBytes = 8 << 20

// do sends in (if not nil) as JSON and decodes the answer into out (if not
// nil). A non-2xx answer is returned as an *Error.
func (c *Remote) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("admin API: %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			return fmt.Errorf("admin API: %s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: %s %s: %w", method, path, err)
	}
	return nil
}

func get[T any](ctx context.Context, c *Remote, path string) (T, error) {
	var v T
	err := c.do(ctx, http.MethodGet, path, nil, &v)
	return v, err
}

func send[T any](ctx context.Context, c *Remote, method, path string, in any) (T, error) {
	var v T
	err := c.do(ctx, method, path, in, &v)
	return v, err
}

func userPath(username string, rest ...string) string {
	return "/v1/users/" + url.PathEscape(username) + strings.Join(rest, "")
}

func clientPath(id string, rest ...string) string {
	return "/v1/clients/" + url.PathEscape(id) + strings.Join(rest, "")
}

// ListUsers implements Service.
func (c *Remote) ListUsers(ctx context.Context) ([]User, error) {
	return get[[]User](ctx, c, "/v1/users")
}

// GetUser implements Service.
func (c *Remote) GetUser(ctx context.Context, username string) (User, error) {
	return get[User](ctx, c, userPath(username))
}

// CreateUser implements Service.
func (c *Remote) CreateUser(ctx context.Context, u NewUser) (User, error) {
	return send[User](ctx, c, http.MethodPost, "/v1/users", u)
}

// SetUserDisabled implements Service.
func (c *Remote) SetUserDisabled(ctx context.Context, username string, disabled bool) (User, error) {
	action := "/enable"
	if disabled {
		action = "/disable"
	}
	return send[User](ctx, c, http.MethodPost, userPath(username, action), nil)
}

// SetPassword implements Service.
func (c *Remote) SetPassword(ctx context.Context, username, password string) error {
	return c.do(ctx, http.MethodPut, userPath(username, "/password"), Password{Password: password}, nil)
}

// SetRoles implements Service.
func (c *Remote) SetRoles(ctx context.Context, username string, roles []string) (User, error) {
	return send[User](ctx, c, http.MethodPut, userPath(username, "/roles"), Roles{Roles: roles})
}

// ListSessions implements Service.
func (c *Remote) ListSessions(ctx context.Context, username string) ([]Session, error) {
	return get[[]Session](ctx, c, userPath(username, "/sessions"))
}

// RevokeSession implements Service.
func (c *Remote) RevokeSession(ctx context.Context, username, sessionID string) error {
	return c.do(ctx, http.MethodDelete, userPath(username, "/sessions/", url.PathEscape(sessionID)), nil, nil)
}

// RevokeSessions implements Service.
func (c *Remote) RevokeSessions(ctx context.Context, username string) ([]string, error) {
	r, err := send[Revoked](ctx, c, http.MethodDelete, userPath(username, "/sessions"), nil)
	return r.Sessions, err
}

// ListClients implements Service.
func (c *Remote) ListClients(ctx context.Context) ([]Client, error) {
	return get[[]Client](ctx, c, "/v1/clients")
}

// GetClient implements Service.
func (c *Remote) GetClient(ctx context.Context, id string) (Client, error) {
	return get[Client](ctx, c, clientPath(id))
}

// CreateClient implements Service.
func (c *Remote) CreateClient(ctx context.Context, nc NewClient) (CreatedClient, error) {
	return send[CreatedClient](ctx, c, http.MethodPost, "/v1/clients", nc)
}

// SetClientDisabled implements Service.
func (c *Remote) SetClientDisabled(ctx context.Context, id string, disabled bool) (Client, error) {
	action := "/enable"
	if disabled {
		action = "/disable"
	}
	return send[Client](ctx, c, http.MethodPost, clientPath(id, action), nil)
}

// ListKeys implements Service.
func (c *Remote) ListKeys(ctx context.Context) ([]Key, error) {
	return get[[]Key](ctx, c, "/v1/keys")
}

// RotateKey implements Service.
func (c *Remote) RotateKey(ctx context.Context, r RotateKey) (Key, error) {
	return send[Key](ctx, c, http.MethodPost, "/v1/keys/rotate", r)
}

// RevokeKey implements Service.
func (c *Remote) RevokeKey(ctx context.Context, kid string) (Key, error) {
	return send[Key](ctx, c, http.MethodPost, "/v1/keys/"+url.PathEscape(kid)+"/revoke", nil)
}

var _ Service = (*Remote)(nil)

// CreateJoinToken implements Service.
func (c *Remote) CreateJoinToken(ctx context.Context, jt NewJoinToken) (JoinToken, error) {
	return send[JoinToken](ctx, c, http.MethodPost, "/v1/join-tokens", jt)
}
