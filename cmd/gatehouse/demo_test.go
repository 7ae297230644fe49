package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// TestDemoConsumersWithCertificateFiles: `gatehouse demo consumers` with
// certificate files (as `gatehouse ca issue` writes them) serves https on
// the address it logs, admits the allowed peer — whose request without a
// token is then answered 401 by the resource library — and refuses every
// other certificate in the handshake. It stops cleanly when its context
// ends.
func TestDemoConsumersWithCertificateFiles(t *testing.T) {
	ca := pkitest.NewCA(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.SVID("consumers").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bundlePEM, err := ca.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "bundle.pem": bundlePEM} {
		writeFile(t, filepath.Join(dir, name), string(data))
	}
	file := filepath.Join(dir, "consumers.yaml")
	writeFile(t, file, "listen: 127.0.0.1:0\nissuer: http://127.0.0.1:1\naudience: [api]\nmtls:\n"+
		"  cert_file: "+filepath.Join(dir, "cert.pem")+"\n  key_file: "+filepath.Join(dir, "key.pem")+
		"\n  bundle_file: "+filepath.Join(dir, "bundle.pem")+"\n  allowed_peers: ["+ca.ID("gateway").String()+"]\n")

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runConsumers(ctx, file, slog.New(slog.NewTextHandler(logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runConsumers after its context ended: got %v, want nil", err)
		}
	})
	url := "https://" + waitReadyLine(t, logs, "consumers ready") + "/consumers/me"

	tests := []struct {
		name       string
		peer       string
		wantStatus int // 0: the handshake fails
	}{
		{name: "allowed_peer_without_token", peer: "gateway", wantStatus: http.StatusUnauthorized},
		{name: "other_peer", peer: "orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := ca.Source(tt.peer)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = pki.ClientConfig(src, src, pki.AuthorizeID(ca.ID("consumers")))
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %d, want the handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("got %d with WWW-Authenticate %q, want %d with a Bearer challenge", resp.StatusCode,
					resp.Header.Get("WWW-Authenticate"), tt.wantStatus)
			}
		})
	}
}

// TestDemoCommandsNeedAConfig: each service command refuses to start
// without --config or with a file that does not load.
func TestDemoCommandsNeedAConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, "issuer: http://127.0.0.1:1\naudience: [api]\ncolour: blue\n")
	for _, args := range [][]string{{"demo", "orders"}, {"demo", "consumers"}, {"demo", "orders", "--config", bad},
		{"demo", "consumers", "--config", bad}, {"demo", "consumers", "--config", filepath.Join(t.TempDir(), "missing.yaml")}} {
		root := newRootCommand()
		root.SetArgs(args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		if err := root.ExecuteContext(t.Context()); err == nil {
			t.Errorf("gatehouse %s: got no error", strings.Join(args, " "))
		}
	}
}

// readyAddr matches the line listenAndServeTLS logs.
var readyAddr = regexp.MustCompile(`msg="([^"]+)" addr=(\S+)`)

// waitReadyLine waits for the log line msg with an address and returns it.
func waitReadyLine(t *testing.T, logs *syncBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range readyAddr.FindAllStringSubmatch(logs.String(), -1) {
			if m[1] == msg {
				return m[2]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q line within 30s; logs:\n%s", msg, logs.String())
	return ""
}
