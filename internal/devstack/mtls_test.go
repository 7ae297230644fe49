package devstack_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// startStack runs a dev stack on free loopback ports and records the SPIFFE
// ID of every mTLS peer that reaches a demo service.
func startStack(t *testing.T) (*devstack.Stack, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var peers []string
	wrap := func(name string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				id, _ := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
				mu.Lock()
				peers = append(peers, name+" <- "+id.String())
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
	s, err := devstack.Start(context.Background(), devstack.Options{
		DataDir: t.TempDir(), Seed: &config.Seed{Users: []config.SeedUser{
			{Username: "alice", Password: "alice-password-1", Roles: []string{"consumer"}}}},
		GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		Wrap:           wrap, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), peers...) }
}

// as returns a client presenting a fresh certificate for name from the
// stack's CA and trusting its bundle (any server ID).
func as(t *testing.T, s *devstack.Stack, name string) *http.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := s.CA.Issue(key.Public(), name)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.CA.ID(name)
	bundle, _ := s.CA.Bundle()
	cfg := pki.ClientConfig(&x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, bundle, pki.AuthorizeMemberOf(s.CA.TrustDomain()))
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func status(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestDevStackServicesOverMTLS(t *testing.T) {
	s, peers := startStack(t)
	if !strings.HasPrefix(s.OrdersURL, "https://") || !strings.HasPrefix(s.ConsumersURL, "https://") {
		t.Fatalf("got %s and %s, want https service URLs", s.OrdersURL, s.ConsumersURL)
	}

	// Through the gateway: the gateway's mTLS client reaches both services.
	for _, path := range []string{"/api/orders", "/api/consumers/me"} {
		req, _ := http.NewRequest(http.MethodGet, s.GatewayURL+path, nil)
		req.SetBasicAuth("alice", "alice-password-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s through the gateway: got HTTP %d, want 200", path, resp.StatusCode)
		}
	}
	want := []string{"orders <- spiffe://gatehouse.internal/svc/gateway", "consumers <- spiffe://gatehouse.internal/svc/gateway"}
	if got := peers(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got peers %q, want %q", got, want)
	}

	// Directly: plaintext is refused, and each service admits only its peers.
	// A 401 means mTLS admitted the caller and the service asked for a token.
	plain := &http.Client{Timeout: 5 * time.Second}
	if code, err := status(plain, "http://"+strings.TrimPrefix(s.OrdersURL, "https://")+"/orders"); err == nil && code < 400 {
		t.Errorf("plaintext to orders: got HTTP %d, want a refusal", code)
	}
	tests := []struct {
		caller, url string
		admitted    bool
	}{
		{"gateway", s.OrdersURL, true},
		{"consumers", s.OrdersURL, false},
		{"orders", s.OrdersURL, false},
		{"gateway", s.ConsumersURL, true},
		{"orders", s.ConsumersURL, true},
		{"billing", s.ConsumersURL, false},
	}
	for _, tt := range tests {
		path := "/orders"
		if tt.url == s.ConsumersURL {
			path = "/consumers/me"
		}
		code, err := status(as(t, s, tt.caller), tt.url+path)
		if tt.admitted && (err != nil || code != http.StatusUnauthorized) {
			t.Errorf("%s → %s: got %d, %v, want admitted by mTLS (401 from the service)", tt.caller, tt.url, code, err)
		}
		if !tt.admitted && err == nil {
			t.Errorf("%s → %s: got HTTP %d, want the handshake refused", tt.caller, tt.url, code)
		}
	}

	// A client that expects another server ID refuses the service.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, _ := s.CA.Issue(key.Public(), "gateway")
	id, _ := s.CA.ID("gateway")
	bundle, _ := s.CA.Bundle()
	expectConsumers, _ := s.CA.ID("consumers")
	tr := &http.Transport{TLSClientConfig: pki.ClientConfig(&x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, bundle, pki.AuthorizeID(expectConsumers))}
	defer tr.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr}).Get(s.OrdersURL + "/orders"); err == nil {
		t.Errorf("a client expecting consumers reached orders")
	}
}
