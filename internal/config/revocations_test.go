package config

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGatewayFileRevocations(t *testing.T) {
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/oauth2/token"})
	}))
	defer srv.Close()
	issuer = srv.URL
	secret := write(t, "ssf-secret", "receiver-secret-0123456789\n")
	c, gc, err := LoadGateway(write(t, "gw.yaml", "issuer: "+issuer+"\naudience: [api]\nrevocations:\n  client_id: gw1-ssf\n  client_secret_file: "+
		secret+"\n  max_token_lifetime: 5m\n  fail_closed: true\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Revocations
	if r == nil || r.ClientID != "gw1-ssf" || r.MaxTokenLifetime.Minutes() != 5 || !r.FailClosed {
		t.Fatalf("got %+v, want the file's revocations block", r)
	}
	rcv, err := r.Receiver(t.Context(), gc.Issuer, "", slog.New(slog.DiscardHandler))
	if err != nil || rcv == nil {
		t.Fatalf("Receiver with the token URL from discovery: got %v, %v, want a receiver", rcv, err)
	}
	if _, err := (&Revocations{}).Receiver(t.Context(), issuer, "", slog.New(slog.DiscardHandler)); err == nil ||
		!strings.Contains(err.Error(), "client_id") {
		t.Fatalf("got %v, want client_id required", err)
	}
	t.Setenv(EnvGatewaySSFSecret, "")
	if _, err := (&Revocations{ClientID: "x"}).Receiver(t.Context(), issuer, "", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatalf("got no error without a secret")
	}
	if _, err := (&Revocations{ClientID: "x", ClientSecretFile: secret}).Receiver(t.Context(), "http://127.0.0.1:1", "", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatalf("got no error when discovery fails")
	}
}

// TestGatewayFileRevocationsDelivery: delivery push needs the admin
// listener, where the push endpoint is served, and a push_url unless that
// listener is on loopback.
func TestGatewayFileRevocationsDelivery(t *testing.T) {
	tests := []struct {
		name, adminListen, block string
		wantURL, wantErr         string
	}{
		{name: "poll by default", block: "client_id: gw1-ssf"},
		{name: "poll", block: "client_id: gw1-ssf\n  delivery: poll"},
		{name: "push on a loopback admin listener", adminListen: "127.0.0.1:9090", block: "client_id: gw1-ssf\n  delivery: push",
			wantURL: "http://127.0.0.1:9090/ssf/push"},
		{name: "push on localhost", adminListen: "localhost:9090", block: "client_id: gw1-ssf\n  delivery: push",
			wantURL: "http://localhost:9090/ssf/push"},
		{name: "push with push_url", adminListen: "0.0.0.0:9090",
			block:   "client_id: gw1-ssf\n  delivery: push\n  push_url: https://gw1.internal:9443/ssf/push",
			wantURL: "https://gw1.internal:9443/ssf/push"},
		{name: "push without admin listener", block: "client_id: gw1-ssf\n  delivery: push", wantErr: "needs admin_listen"},
		{name: "push on all interfaces without push_url", adminListen: ":9090", block: "client_id: gw1-ssf\n  delivery: push",
			wantErr: "needs push_url"},
		{name: "push_url with poll", adminListen: "127.0.0.1:9090", block: "client_id: gw1-ssf\n  push_url: https://gw1.internal/ssf/push",
			wantErr: "push_url needs delivery: push"},
		{name: "unknown delivery", block: "client_id: gw1-ssf\n  delivery: carrier-pigeon", wantErr: "want poll or push"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "issuer: https://auth.example.test\naudience: [api]\n"
			if tt.adminListen != "" {
				file += "admin_listen: " + tt.adminListen + "\n"
			}
			file += "revocations:\n  " + tt.block + "\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n"
			c, _, err := LoadGateway(write(t, "gw.yaml", file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Revocations.PushURL != tt.wantURL {
				t.Errorf("push_url: got %q, want %q", c.Revocations.PushURL, tt.wantURL)
			}
		})
	}
}
