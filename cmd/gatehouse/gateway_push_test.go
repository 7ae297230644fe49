package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// TestGatewayPushRevocations: `gatehouse gateway` with revocations
// delivered by push serves its receiver's push endpoint on the admin
// listener — and only there — and a token revoked at a real authorization
// server is refused at the gateway within a second.
func TestGatewayPushRevocations(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr := keyring.Generate()
	cheap := password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	var handler http.Handler = http.NotFoundHandler()
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(as.Close)
	srv, err := authserver.New(ctx, authserver.Config{Issuer: as.URL, Store: st, Keyring: kr, Audience: []string{"api"},
		PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	handler = srv
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go srv.Run(runCtx)
	m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: cheap}
	_, rcvSecret, err := m.AddClient(ctx, accounts.ClientSpec{ID: "gw-ssf", Grants: []string{oauth.GrantClientCredentials},
		Scopes: []string{authserver.ScopeSSFManage}, Audience: []string{as.URL}})
	if err != nil {
		t.Fatal(err)
	}
	_, svcSecret, err := m.AddClient(ctx, accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}

	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "gw-ssf.secret")
	writeFile(t, secretFile, rcvSecret)
	path := filepath.Join(dir, "gateway.yaml")
	writeFile(t, path, "issuer: "+as.URL+"\naudience: [api]\nadmin_listen: "+adminLn.Addr().String()+
		"\nrevocations:\n  client_id: gw-ssf\n  client_secret_file: "+secretFile+"\n  delivery: push\n"+
		"routes:\n  - prefix: /x\n    upstream: "+echoUpstream(t, "a")+"\n")
	p, public := startGateway(t, path)
	admin := httptest.NewUnstartedServer(p.adminHandler())
	admin.Listener.Close()
	admin.Listener = adminLn
	admin.Start()
	t.Cleanup(admin.Close)
	go p.receiver.Run(runCtx)

	if code, body := postPush(t, admin.URL+"/ssf/push"); code != http.StatusBadRequest || !strings.Contains(body, "authentication_failed") {
		t.Errorf("admin listener, push without the stream's secret: got %d %s, want 400 authentication_failed", code, body)
	}
	if code, _ := postPush(t, public+"/ssf/push"); code == http.StatusBadRequest || code == http.StatusAccepted {
		t.Errorf("the public listener answered a push: %d", code)
	}

	token := func() string {
		form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
		req, _ := http.NewRequest("POST", as.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", svcSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		return tok.AccessToken
	}()
	call := func() int {
		req, _ := http.NewRequest("GET", public+"/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(); code != http.StatusOK {
		t.Fatalf("before the revocation: got %d, want 200", code)
	}
	time.Sleep(300 * time.Millisecond) // the receiver has created its stream
	start := time.Now()
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest("POST", as.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", svcSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	for call() != http.StatusUnauthorized {
		if time.Since(start) > time.Second {
			t.Fatal("the gateway still accepts the revoked token after 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the gateway refused the revoked token %v after the revocation began", time.Since(start))
}

func postPush(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "application/secevent+jwt", strings.NewReader("x.y.z"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
