package authserver_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// cheap keeps argon2id fast under -race; the parameters are still valid.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// Seeded accounts of every test server.
const (
	issuer       = "https://auth.example.test"
	alicePass    = "alice-password-1"
	davePass     = "dave-password-1"
	cliSecret    = "cli-secret-0123456789"
	otherSecret  = "other-secret-0123456789"
	svcSecret    = "svc-secret-0123456789"
	maxBodyBytes = 4 << 10
)

// testServer is a real Server over a real SQLite file, seeded with:
//   - users alice (roles consumer) and dave (disabled);
//   - client cli (password, refresh_token; scopes orders, profile);
//   - client other (password, refresh_token; scope orders);
//   - client svc (client_credentials only; scope orders).
type testServer struct {
	*authserver.Server
	store   store.Store
	keyring *keyring.Keyring
}

func newTestServer(tb testing.TB, mod func(*authserver.Config)) *testServer {
	tb.Helper()
	ctx := tb.Context()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "gatehouse.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	kr := keyring.Generate()
	m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: cheap}
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}
	_, err = m.AddUser(ctx, "alice", alicePass, []string{"consumer"})
	must(err)
	_, err = m.AddUser(ctx, "dave", davePass, []string{"consumer"})
	must(err)
	must(m.SetDisabled(ctx, "dave", true))
	for _, c := range []accounts.ClientSpec{
		{ID: "cli", Secret: cliSecret, Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, Scopes: []string{"orders", "profile"}},
		{ID: "other", Secret: otherSecret, Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, Scopes: []string{"orders"}},
		{ID: "svc", Secret: svcSecret, Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{"orders"}},
		{ID: "cli-post", Secret: cliSecret, AuthMethod: store.AuthClientSecretPost, Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, Scopes: []string{"orders", "profile"}},
	} {
		_, _, err := m.AddClient(ctx, c)
		must(err)
	}
	cfg := authserver.Config{
		Issuer: issuer, Store: st, Keyring: kr, Audience: []string{"demo-api"},
		PasswordParams: cheap, MaxBodyBytes: maxBodyBytes,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := authserver.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("authserver.New: %v", err)
	}
	return &testServer{Server: s, store: st, keyring: kr}
}

// request is one call to the token endpoint.
type request struct {
	method      string // default POST
	contentType string // default application/x-www-form-urlencoded; "-" for none
	auth        string // raw Authorization header
	body        string
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func (s *testServer) do(tb testing.TB, req request) *httptest.ResponseRecorder {
	tb.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequestWithContext(tb.Context(), method, s.TokenURL(), strings.NewReader(req.body))
	switch req.contentType {
	case "":
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "-":
	default:
		r.Header.Set("Content-Type", req.contentType)
	}
	if req.auth != "" {
		r.Header.Set("Authorization", req.auth)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// login makes a password grant for alice with cli and returns the response.
func (s *testServer) login(tb testing.TB, scope string) oauth.TokenResponse {
	tb.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}}
	if scope != "" {
		form.Set("scope", scope)
	}
	w := s.do(tb, request{auth: basic("cli", cliSecret), body: form.Encode()})
	if w.Code != http.StatusOK {
		tb.Fatalf("login: got %d %s, want 200", w.Code, w.Body)
	}
	var tr oauth.TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || tr.RefreshToken == "" {
		tb.Fatalf("login: got %s (%v), want a token response with a refresh token", w.Body, err)
	}
	return tr
}

// snapshot is the server's state that a refused request must not change.
type snapshot struct {
	Users   []store.User
	Clients []store.Client
	Keys    []store.SigningKey
	Refresh store.RefreshToken
}

func (s *testServer) snapshot(tb testing.TB, refreshToken string) snapshot {
	tb.Helper()
	ctx := tb.Context()
	var snap snapshot
	var err error
	if snap.Users, err = s.store.ListUsers(ctx); err != nil {
		tb.Fatal(err)
	}
	if snap.Clients, err = s.store.ListClients(ctx); err != nil {
		tb.Fatal(err)
	}
	if snap.Keys, err = s.store.ListSigningKeys(ctx); err != nil {
		tb.Fatal(err)
	}
	hash := s.keyring.Hasher(keyring.PurposeRefreshToken).Hash(refreshToken)
	if snap.Refresh, err = s.store.GetRefreshToken(ctx, hash); err != nil {
		tb.Fatalf("get refresh token: %v", err)
	}
	return snap
}

// golden is what a golden file holds: the parts of a response a client
// relies on.
type golden struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// goldenHeaders are compared; others (Date, Content-Length) are not.
var goldenHeaders = []string{"Allow", "Cache-Control", "Content-Type", "Pragma", "Www-Authenticate", "X-Content-Type-Options"}

func responseGolden(tb testing.TB, w *httptest.ResponseRecorder) []byte {
	tb.Helper()
	g := golden{Status: w.Code, Headers: map[string]string{}, Body: json.RawMessage(bytes.TrimSpace(w.Body.Bytes()))}
	for _, h := range goldenHeaders {
		if v := w.Header().Values(h); len(v) > 0 {
			g.Headers[h] = strings.Join(v, ", ")
		}
	}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		tb.Fatalf("response body is not JSON: %v: %s", err, w.Body)
	}
	return append(out, '\n')
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("response differs from %s:\ngot  %s\nwant %s", path, got, want)
	}
}

func TestTokenEndpointRefusesBadInput(t *testing.T) {
	s := newTestServer(t, nil)
	live := s.login(t, "orders") // a refresh token that every case below must leave usable
	before := s.snapshot(t, live.RefreshToken)

	cliBasic := basic("cli", cliSecret)
	pw := "grant_type=password&username=alice&password=" + alicePass
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantCode   string
		// wantChallenge is the WWW-Authenticate header; "" means none.
		wantChallenge string
	}{
		{name: "get", req: request{method: http.MethodGet, contentType: "-", auth: cliBasic},
			wantStatus: http.StatusMethodNotAllowed, wantCode: "invalid_request"},
		{name: "put", req: request{method: http.MethodPut, auth: cliBasic, body: pw},
			wantStatus: http.StatusMethodNotAllowed, wantCode: "invalid_request"},
		{name: "content_type_json", req: request{contentType: "application/json", auth: cliBasic, body: `{"grant_type":"password"}`},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "content_type_missing", req: request{contentType: "-", auth: cliBasic, body: pw},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "content_type_malformed", req: request{contentType: "application/x-www-form-urlencoded; charset", auth: cliBasic, body: pw},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "content_type_multipart", req: request{contentType: "multipart/form-data; boundary=x", auth: cliBasic, body: "--x--"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "form_bad_escape", req: request{auth: cliBasic, body: "grant_type=password&username=%zz"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "form_semicolon", req: request{auth: cliBasic, body: "grant_type=password;username=alice"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "body_too_large", req: request{auth: cliBasic, body: pw + "&pad=" + strings.Repeat("a", maxBodyBytes)},
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: "invalid_request"},
		{name: "basic_not_base64", req: request{auth: "Basic !!!not-base64!!!", body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "basic_no_colon", req: request{auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("cli")), body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "basic_bad_escape", req: request{auth: basic("cl%zz", cliSecret), body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "basic_empty_id", req: request{auth: basic("", cliSecret), body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "auth_bearer_scheme", req: request{auth: "Bearer abc", body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "basic_and_post", req: request{auth: cliBasic, body: pw + "&client_id=cli&client_secret=" + cliSecret},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "no_client_authentication", req: request{body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "post_without_secret", req: request{body: pw + "&client_id=cli"},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client"},
		{name: "basic_unknown_client", req: request{auth: basic("nobody", cliSecret), body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "basic_wrong_secret", req: request{auth: basic("cli", "wrong-secret-0123456789"), body: pw},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
		{name: "post_unknown_client", req: request{body: pw + "&client_id=nobody&client_secret=" + cliSecret},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client"},
		{name: "post_wrong_secret", req: request{body: pw + "&client_id=cli&client_secret=wrong-secret-0123456789"},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client"},
		{name: "grant_type_missing", req: request{auth: cliBasic, body: "username=alice&password=" + alicePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "grant_type_unknown", req: request{auth: cliBasic, body: "grant_type=magic"},
			wantStatus: http.StatusBadRequest, wantCode: "unsupported_grant_type"},
		{name: "grant_type_not_implemented", req: request{auth: cliBasic, body: "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x"},
			wantStatus: http.StatusBadRequest, wantCode: "unsupported_grant_type"},
		{name: "grant_not_allowed_for_client", req: request{auth: basic("svc", svcSecret), body: pw},
			wantStatus: http.StatusBadRequest, wantCode: "unauthorized_client"},
		{name: "client_credentials_not_allowed", req: request{auth: cliBasic, body: "grant_type=client_credentials"},
			wantStatus: http.StatusBadRequest, wantCode: "unauthorized_client"},
		{name: "scope_not_allowed", req: request{auth: cliBasic, body: pw + "&scope=orders+admin"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope"},
		{name: "scope_empty", req: request{auth: cliBasic, body: pw + "&scope=+"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope"},
		{name: "username_missing", req: request{auth: cliBasic, body: "grant_type=password&password=" + alicePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "username_empty", req: request{auth: cliBasic, body: "grant_type=password&username=&password=" + alicePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "password_missing", req: request{auth: cliBasic, body: "grant_type=password&username=alice"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "parameter_repeated", req: request{auth: cliBasic, body: pw + "&username=bob"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "grant_type_repeated", req: request{auth: cliBasic, body: pw + "&grant_type=password"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "password_wrong", req: request{auth: cliBasic, body: "grant_type=password&username=alice&password=wrong-password"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "password_too_long", req: request{auth: cliBasic, body: "grant_type=password&username=alice&password=" + strings.Repeat("x", password.MaxLength+1)},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "user_unknown", req: request{auth: cliBasic, body: "grant_type=password&username=mallory&password=" + alicePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "user_disabled", req: request{auth: cliBasic, body: "grant_type=password&username=dave&password=" + davePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "username_with_nul", req: request{auth: cliBasic, body: "grant_type=password&username=alice%00&password=" + alicePass},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "refresh_token_missing", req: request{auth: cliBasic, body: "grant_type=refresh_token"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "refresh_token_unknown", req: request{auth: cliBasic, body: "grant_type=refresh_token&refresh_token=not-a-token"},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "refresh_token_of_other_client", req: request{auth: basic("other", otherSecret), body: "grant_type=refresh_token&refresh_token=" + live.RefreshToken},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "refresh_scope_not_granted", req: request{auth: cliBasic, body: "grant_type=refresh_token&scope=profile&refresh_token=" + live.RefreshToken},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope"},
		{name: "refresh_scope_not_allowed", req: request{auth: cliBasic, body: "grant_type=refresh_token&scope=admin&refresh_token=" + live.RefreshToken},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope"},
		{name: "refresh_token_repeated", req: request{auth: cliBasic, body: "grant_type=refresh_token&refresh_token=" + live.RefreshToken + "&refresh_token=" + live.RefreshToken},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request"},
		{name: "refresh_wrong_secret", req: request{auth: basic("cli", "wrong-secret-0123456789"), body: "grant_type=refresh_token&refresh_token=" + live.RefreshToken},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantChallenge: `Basic realm="gatehouse", charset="UTF-8"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.do(t, tt.req)
			if w.Code >= 500 {
				t.Fatalf("got status %d, want a 4xx: %s", w.Code, w.Body)
			}
			if w.Code != tt.wantStatus {
				t.Errorf("got status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want %q", got, "no-store")
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want %q", got, "application/json")
			}
			var e oauth.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if e.Code != tt.wantCode {
				t.Errorf("got error %q, want %q", e.Code, tt.wantCode)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got, tt.wantChallenge)
			}
			if strings.Contains(w.Body.String(), live.RefreshToken) || strings.Contains(w.Body.String(), alicePass) {
				t.Errorf("body %s echoes a secret", w.Body)
			}
			checkGolden(t, tt.name, responseGolden(t, w))
		})
	}

	t.Run("no_state_change", func(t *testing.T) {
		after := s.snapshot(t, live.RefreshToken)
		if !reflect.DeepEqual(after, before) {
			t.Errorf("state changed:\ngot  %+v\nwant %+v", after, before)
		}
		w := s.do(t, request{auth: cliBasic, body: "grant_type=refresh_token&refresh_token=" + live.RefreshToken})
		if w.Code != http.StatusOK {
			t.Errorf("refresh after bad requests: got %d %s, want 200", w.Code, w.Body)
		}
	})
}

// TestTokenEndpointGrants checks the grants that must succeed, so that the
// refusals above are refusals of bad input, not of everything.
func TestTokenEndpointGrants(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name      string
		req       request
		wantScope string
		wantRT    bool
	}{
		{name: "password_basic", req: request{auth: basic("cli", cliSecret), body: "grant_type=password&username=alice&password=" + alicePass},
			wantScope: "orders profile", wantRT: true},
		{name: "password_post", req: request{body: "grant_type=password&username=alice&password=" + alicePass + "&client_id=cli-post&client_secret=" + cliSecret},
			wantScope: "orders profile", wantRT: true},
		{name: "password_scope_subset", req: request{auth: basic("cli", cliSecret), body: "grant_type=password&username=alice&scope=profile+orders+orders&password=" + alicePass},
			wantScope: "orders profile", wantRT: true},
		{name: "content_type_with_charset", req: request{contentType: "Application/X-WWW-Form-URLEncoded; charset=UTF-8", auth: basic("cli", cliSecret),
			body: "grant_type=password&username=alice&password=" + alicePass}, wantScope: "orders profile", wantRT: true},
		{name: "client_credentials", req: request{auth: basic("svc", svcSecret), body: "grant_type=client_credentials"},
			wantScope: "orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.do(t, tt.req)
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want %q", got, "no-store")
			}
			var tr oauth.TokenResponse
			if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
				t.Fatal(err)
			}
			if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn != 300 {
				t.Errorf("got %+v, want a Bearer access token for 300s", tr)
			}
			if tr.Scope != tt.wantScope {
				t.Errorf("got scope %q, want %q", tr.Scope, tt.wantScope)
			}
			if got := tr.RefreshToken != ""; got != tt.wantRT {
				t.Errorf("got refresh token %v, want %v", got, tt.wantRT)
			}
		})
	}
}

// TestUnknownUserLooksLikeWrongPassword checks that a client cannot tell an
// unknown user from a wrong password or a disabled account by the response.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	s := newTestServer(t, nil)
	respond := func(username, pw string) []byte {
		form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
		w := s.do(t, request{auth: basic("cli", cliSecret), body: form.Encode()})
		var b bytes.Buffer
		fmt.Fprintf(&b, "%d\n", w.Code)
		keys := make([]string, 0, len(w.Header()))
		for k := range w.Header() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(k + ": " + strings.Join(w.Header()[k], ", ") + "\n")
		}
		b.Write(w.Body.Bytes())
		return b.Bytes()
	}
	wrong := respond("alice", "wrong-password")
	tests := []struct {
		name, username, password string
	}{
		{name: "unknown_user", username: "mallory", password: "wrong-password"},
		{name: "unknown_user_with_alices_password", username: "mallory", password: alicePass},
		{name: "disabled_user_right_password", username: "dave", password: davePass},
		{name: "disabled_user_wrong_password", username: "dave", password: "wrong-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := respond(tt.username, tt.password); !bytes.Equal(got, wrong) {
				t.Errorf("got\n%s\nwant the wrong-password response\n%s", got, wrong)
			}
		})
	}
}

// TestRefreshRotation checks rotation, the grace window and reuse
// detection at the token endpoint.
func TestRefreshRotation(t *testing.T) {
	refresh := func(t *testing.T, s *testServer, rt string) (int, oauth.TokenResponse, string) {
		t.Helper()
		w := s.do(t, request{auth: basic("cli", cliSecret), body: "grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt)})
		var tr oauth.TokenResponse
		var e oauth.Error
		json.Unmarshal(w.Body.Bytes(), &tr)
		json.Unmarshal(w.Body.Bytes(), &e)
		return w.Code, tr, e.Code
	}
	t.Run("reuse_revokes_family", func(t *testing.T) {
		s := newTestServer(t, func(c *authserver.Config) { c.RefreshGrace = -1 })
		rt := s.login(t, "").RefreshToken
		code, next, _ := refresh(t, s, rt)
		if code != http.StatusOK || next.RefreshToken == "" || next.RefreshToken == rt {
			t.Fatalf("first use: got %d %+v, want 200 with a new refresh token", code, next)
		}
		if code, _, e := refresh(t, s, rt); code != http.StatusBadRequest || e != "invalid_grant" {
			t.Errorf("second use: got %d %q, want 400 invalid_grant", code, e)
		}
		if code, _, e := refresh(t, s, next.RefreshToken); code != http.StatusBadRequest || e != "invalid_grant" {
			t.Errorf("successor after reuse: got %d %q, want 400 invalid_grant", code, e)
		}
	})
	t.Run("grace_retry_gets_same_successor", func(t *testing.T) {
		s := newTestServer(t, nil)
		rt := s.login(t, "").RefreshToken
		_, first, _ := refresh(t, s, rt)
		code, retry, _ := refresh(t, s, rt)
		if code != http.StatusOK || retry.RefreshToken != first.RefreshToken {
			t.Fatalf("retry in grace: got %d %q, want 200 %q", code, retry.RefreshToken, first.RefreshToken)
		}
		if code, third, _ := refresh(t, s, first.RefreshToken); code != http.StatusOK || slices.Contains([]string{"", rt, first.RefreshToken}, third.RefreshToken) {
			t.Errorf("successor after retry: got %d %+v, want 200 with a new refresh token", code, third)
		}
	})
}

// TestUnknownUserCostsLikeWrongPassword checks that an unknown user costs
// the same password hash as a wrong password when the server runs with
// non-default argon2id parameters, so response time does not reveal which
// usernames exist. It compares medians of interleaved samples; the
// parameters are chosen so that one hash dominates a request.
func TestUnknownUserCostsLikeWrongPassword(t *testing.T) {
	params := password.Params{Memory: 1 << 10, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	s := newTestServer(t, func(c *authserver.Config) { c.PasswordParams = params })
	// Seeded hashes use the cheap parameters; give alice one made with the
	// server's, as a user created under this configuration would have.
	m := &accounts.Manager{Store: s.store, Params: params}
	if err := m.SetPassword(t.Context(), "alice", alicePass); err != nil {
		t.Fatal(err)
	}
	measure := func(username string) time.Duration {
		form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {"wrong-password"}}
		start := time.Now()
		w := s.do(t, request{auth: basic("cli", cliSecret), body: form.Encode()})
		d := time.Since(start)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("got %d %s, want 400", w.Code, w.Body)
		}
		return d
	}
	const n = 15
	var wrong, unknown []time.Duration
	for range n {
		wrong = append(wrong, measure("alice"))
		unknown = append(unknown, measure("mallory"))
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mw, mu := median(wrong), median(unknown)
	if ratio := float64(mu) / float64(mw); ratio > 4 || ratio < 1.0/4 {
		t.Errorf("got median %v for an unknown user, %v for a wrong password, want them within 4x", mu, mw)
	}
}
