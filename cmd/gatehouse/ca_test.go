package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/pki"
)

func TestCACommands(t *testing.T) {
	t.Setenv("GATEHOUSE_MASTER_KEY", "") // unset below; t.Setenv restores it
	os.Unsetenv("GATEHOUSE_MASTER_KEY")
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "orders")

	if _, err := run(t, "", "ca", "issue", "--data", data, "--name", "orders", "--out", out); err == nil {
		t.Fatalf("ca issue before ca init: got no error")
	}
	if got, err := run(t, "", "ca", "init", "--data", data, "--trust-domain", "prod.example.com"); err != nil ||
		!strings.Contains(got, "prod.example.com") {
		t.Fatalf("ca init: got %q, %v", got, err)
	}
	if _, err := run(t, "", "ca", "init", "--data", data, "--trust-domain", "prod.example.com"); err == nil {
		t.Fatalf("second ca init: got no error, want already initialized")
	}
	got, err := run(t, "", "ca", "issue", "--data", data, "--name", "orders", "--out", out)
	if err != nil || !strings.Contains(got, "spiffe://prod.example.com/svc/orders") {
		t.Fatalf("ca issue: got %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(out, "key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got key.pem %v, %v, want mode 0600", fi, err)
	}
	src, err := pki.LoadSource(filepath.Join(out, "cert.pem"), filepath.Join(out, "key.pem"), filepath.Join(out, "bundle.pem"))
	if err != nil {
		t.Fatalf("the issued files do not load: %v", err)
	}
	if svid, _ := src.GetX509SVID(); svid.ID.String() != "spiffe://prod.example.com/svc/orders" {
		t.Fatalf("got %q, want spiffe://prod.example.com/svc/orders", svid.ID)
	}
	if _, err := run(t, "", "ca", "issue", "--data", data, "--name", "../x", "--out", out); err == nil {
		t.Fatalf("ca issue with a bad name: got no error")
	}

	if _, err := run(t, "", "ca", "rotate", "--data", data, "--activate-in", "10m"); err != nil {
		t.Fatalf("ca rotate: %v", err)
	}
	pem, err := run(t, "", "ca", "bundle", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x509bundle.Parse(spiffeid.RequireTrustDomainFromString("prod.example.com"), []byte(pem))
	if err != nil || len(b.X509Authorities()) != 2 {
		t.Fatalf("ca bundle after rotate: got %v, %v, want two roots", b, err)
	}
	if _, err := run(t, "", "ca", "rotate", "--data", data); err == nil {
		t.Fatalf("a second rotation while one is pending: got no error")
	}
}

// TestAuthServerWithCADir runs `gatehouse authserver` with ca_dir and finds
// the issuance endpoint in its discovery document.
func TestAuthServerWithCADir(t *testing.T) {
	data := t.TempDir()
	if _, err := run(t, "", "ca", "init", "--data", data, "--trust-domain", "prod.example.com"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(data, "authserver.yaml")
	os.WriteFile(cfg, []byte("issuer: http://127.0.0.1\nlisten: 127.0.0.1:0\nstore: sqlite:"+filepath.Join(data, "gh.db")+
		"\nmaster_key_file: "+filepath.Join(data, "master.key")+"\nca_dir: "+filepath.Join(data, "ca")+"\n"), 0o600)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAuthServer(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	defer func() { cancel(); <-done }()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, rest, ok := strings.Cut(logs.String(), `authorization server ready" addr=`); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
	}
	if addr == "" {
		t.Fatalf("the server did not start: %s", logs.String())
	}
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	if d["gatehouse_pki_issue_endpoint"] != "http://127.0.0.1/pki/v1/issue" {
		t.Fatalf("got discovery %v, want the issuance endpoint", d)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
