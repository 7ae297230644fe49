package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoUpstream answers every request with its name.
func echoUpstream(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// gatewayFile is a gateway file with one public route /x to upstream.
func gatewayFile(upstream string) string {
	return "issuer: http://127.0.0.1:1\naudience: [api]\nroutes:\n  - prefix: /x\n    upstream: " + upstream +
		"\n    rules: [{public: true}]\n"
}

// startGateway runs a gateway process for the file at path, served over
// HTTP.
func startGateway(t *testing.T, path string) (*gatewayProcess, string) {
	t.Helper()
	p, err := newGatewayProcess(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newGatewayProcess: %v", err)
	}
	srv := httptest.NewServer(&p.handler)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayReload: a reload swaps in the file's new routes; a file that
// does not load leaves the running configuration serving, and says why.
func TestGatewayReload(t *testing.T) {
	a, b := echoUpstream(t, "a"), echoUpstream(t, "b")
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, gatewayFile(a))
	p, url := startGateway(t, path)
	steps := []struct {
		name, file string
		wantErr    string // "" for a successful reload
		wantBody   string
	}{
		{name: "first", wantBody: "a"},
		{name: "new_upstream", file: gatewayFile(b), wantBody: "b"},
		{name: "bad_route_kept_old", file: gatewayFile("ftp://c"), wantErr: "line 4: route 1 (/x)", wantBody: "b"},
		{name: "bad_yaml_kept_old", file: "issuer: [", wantErr: "yaml", wantBody: "b"},
		{name: "unknown_key_kept_old", file: gatewayFile(a) + "colour: blue\n", wantErr: "colour", wantBody: "b"},
		{name: "missing_file_kept_old", wantErr: "no such file", wantBody: "b"},
		{name: "fixed", file: gatewayFile(a), wantBody: "a"},
	}
	for _, s := range steps {
		switch {
		case s.name == "missing_file_kept_old":
			os.Remove(path)
		case s.file != "":
			writeFile(t, path, s.file)
		}
		if s.name != "first" {
			err := p.reload()
			if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
				t.Fatalf("%s: reload: got %v, want an error containing %q", s.name, err, s.wantErr)
			}
		}
		if code, body := get(t, url+"/x"); code != http.StatusOK || body != s.wantBody {
			t.Fatalf("%s: got %d %q, want 200 %q", s.name, code, body, s.wantBody)
		}
	}
}

// TestGatewayReloadOnSIGHUP sends this process a real SIGHUP; the signal
// is caught (signal.Notify) before it is sent, so the test process lives.
func TestGatewayReloadOnSIGHUP(t *testing.T) {
	a, b := echoUpstream(t, "a"), echoUpstream(t, "b")
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, gatewayFile(a))
	p, url := startGateway(t, path)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go p.reloadOn(ctx, hup)

	writeFile(t, path, gatewayFile(b))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, body := get(t, url+"/x"); body == "b" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway never served the new file after SIGHUP")
		}
	}
}

// TestGatewayReloadInFlight: a slow request that started before a reload
// completes through the route it started on.
func TestGatewayReloadInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, gatewayFile(slow.URL))
	p, url := startGateway(t, path)
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() { // no t.Fatal here: not the test's goroutine
		resp, err := http.Get(url + "/x")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	writeFile(t, path, gatewayFile(echoUpstream(t, "new")))
	if err := p.reload(); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, url+"/x"); body != "new" {
		t.Errorf("after the reload: got %q, want the new route", body)
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.code != http.StatusOK || r.body != "slow" {
			t.Fatalf("in-flight request: got %d %q (%v), want 200 %q", r.code, r.body, r.err, "slow")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request never completed")
	}
}

// TestGatewayPhantomKeyOutlivesReload: without a key file, the phantom-token
// key is the process's, so services' cached JWKS stays right after a reload.
func TestGatewayPhantomKeyOutlivesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	file := gatewayFile(echoUpstream(t, "a")) + "client_id: gw\nopaque_tokens:\n  phantom_issuer: https://gw.internal\n"
	t.Setenv("GATEHOUSE_GATEWAY_CLIENT_SECRET", "s")
	writeFile(t, path, file)
	p, url := startGateway(t, path)
	_, before := get(t, url+"/.well-known/gatehouse-gateway/jwks.json")
	if err := p.reload(); err != nil {
		t.Fatal(err)
	}
	_, after := get(t, url+"/.well-known/gatehouse-gateway/jwks.json")
	if !strings.Contains(before, `"kid"`) || before != after {
		t.Errorf("got JWKS %s before and %s after a reload, want the same key", before, after)
	}
}

// TestGatewayAdmin: the admin listener serves metrics and health, and
// routes nothing.
func TestGatewayAdmin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, gatewayFile(echoUpstream(t, "a"))+"admin_listen: 127.0.0.1:0\n")
	p, url := startGateway(t, path)
	get(t, url+"/x")
	admin := httptest.NewServer(p.adminHandler())
	t.Cleanup(admin.Close)
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/metrics", 200, `gatehouse_gateway_requests_total{auth="none",outcome="proxied",route="/x"} 1`},
		{"/metrics", 200, "go_goroutines"},
		{"/healthz", 200, `{"status":"ok"}`},
		{"/x", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, admin.URL+tt.path)
		if code != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%s: got %d %.200q, want %d containing %q", tt.path, code, body, tt.wantStatus, tt.wantBody)
		}
	}
	if code, body := get(t, url+"/metrics"); strings.Contains(body, "gatehouse_gateway") {
		t.Errorf("the public listener served metrics: %d", code)
	}
}
