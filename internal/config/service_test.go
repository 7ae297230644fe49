package config

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServiceFiles: the demo services' files take their defaults, report
// every problem at once, and refuse unknown keys — including the other
// service's — naming the line.
func TestServiceFiles(t *testing.T) {
	const base = "issuer: https://auth.example.com\naudience: [api]\n"
	orders := func(p string) (*Service, error) {
		c, err := LoadOrders(p)
		if err != nil {
			return nil, err
		}
		return &c.Service, nil
	}
	consumers := func(p string) (*Service, error) {
		c, err := LoadConsumers(p)
		if err != nil {
			return nil, err
		}
		if c.ServiceAudience != "consumers" {
			t.Errorf("service_audience: got %q, want the default consumers", c.ServiceAudience)
		}
		return &c.Service, nil
	}
	tests := []struct {
		name       string
		load       func(string) (*Service, error)
		body       string
		wantErr    []string // substrings of the error; none: the file loads
		wantListen string
	}{
		{name: "orders_defaults", load: orders, body: base, wantListen: "127.0.0.1:9101"},
		{name: "consumers_defaults", load: consumers, body: base, wantListen: "127.0.0.1:9102"},
		{name: "orders_plain_http_downstream", load: orders, wantListen: "127.0.0.1:9101", body: base +
			"consumers:\n  url: http://127.0.0.1:9102\n  token_exchange: {client_id: orders, client_secret_file: s, audience: consumers}\n"},
		{name: "orders_mtls_everything", load: orders, wantListen: "0.0.0.0:8443", body: base + "listen: 0.0.0.0:8443\n" +
			"mtls:\n  client_id: orders\n  client_secret_file: s\n  allowed_peers: [spiffe://example.org/svc/gateway]\n" +
			"revocations: {client_id: orders-ssf, client_secret_file: s}\n" +
			"consumers:\n  url: https://consumers.internal:9102\n  spiffe_id: spiffe://example.org/svc/consumers\n" +
			"  token_exchange: {client_id: orders, client_secret_file: s, audience: consumers}\n"},
		{name: "unknown_key", load: orders, body: base + "colour: blue\n", wantErr: []string{"line 3", "colour"}},
		{name: "consumers_key_in_orders", load: orders, body: base + "service_audience: x\n", wantErr: []string{"line 3", "service_audience"}},
		{name: "orders_key_in_consumers", load: consumers, body: base + "consumers: {url: http://x}\n", wantErr: []string{"line 3", "consumers"}},
		{name: "unknown_mtls_key", load: consumers, body: base + "mtls:\n  allowed_peer: [x]\n", wantErr: []string{"line 4", "allowed_peer"}},
		{name: "required", load: consumers, body: "listen: 127.0.0.1:1\n", wantErr: []string{"issuer is required", "audience is required"}},
		{name: "mtls_files_and_client", load: orders, body: base +
			"mtls:\n  cert_file: c\n  key_file: k\n  bundle_file: b\n  client_id: orders\n  client_secret_file: s\n  allowed_peers: [spiffe://example.org/svc/gateway]\n",
			wantErr: []string{"not both"}},
		{name: "mtls_files_incomplete", load: orders, body: base + "mtls:\n  cert_file: c\n  allowed_peers: [spiffe://example.org/svc/gateway]\n",
			wantErr: []string{"go together"}},
		{name: "mtls_no_certificate", load: orders, body: base + "mtls:\n  allowed_peers: [spiffe://example.org/svc/gateway]\n",
			wantErr: []string{"or client_id"}},
		{name: "mtls_client_without_secret", load: orders, body: base + "mtls:\n  client_id: orders\n  allowed_peers: [spiffe://example.org/svc/gateway]\n",
			wantErr: []string{"client_secret_file"}},
		{name: "mtls_peers", load: orders, body: base + "mtls:\n  client_id: orders\n  client_secret_file: s\n  allowed_peers: [https://example.org/gateway]\n",
			wantErr: []string{"allowed_peers", "https://example.org/gateway"}},
		{name: "mtls_no_peers", load: orders, body: base + "mtls:\n  client_id: orders\n  client_secret_file: s\n",
			wantErr: []string{"allowed_peers is required"}},
		{name: "revocations_secret_file", load: consumers, body: base + "revocations: {client_id: c-ssf}\n",
			wantErr: []string{"revocations: client_id and client_secret_file"}},
		{name: "revocations_push", load: consumers, body: base + "revocations: {client_id: c-ssf, client_secret_file: s, delivery: push}\n",
			wantErr: []string{"by poll only"}},
		{name: "https_downstream_needs_mtls", load: orders, body: base +
			"consumers:\n  url: https://consumers.internal\n  spiffe_id: spiffe://example.org/svc/consumers\n  token_exchange: {client_id: o, client_secret_file: s, audience: c}\n",
			wantErr: []string{"needs spiffe_id and the mtls block"}},
		{name: "downstream_checks", load: orders, body: base + "consumers:\n  url: ftp://x\n  spiffe_id: nope\n",
			wantErr: []string{"want an http or https URL", "spiffe_id", "token_exchange needs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.load(write(t, "svc.yaml", tt.body))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("got %v, want the file to load", err)
				}
				if s.Listen != tt.wantListen {
					t.Errorf("listen: got %q, want %q", s.Listen, tt.wantListen)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one saying %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, want it to say %q", err, want)
				}
			}
		})
	}
}

// TestServiceMTLSFromAServerThatIssuesNone: a service asking for its
// certificate from an authorization server without a CA is told what to
// set.
func TestServiceMTLSFromAServerThatIssuesNone(t *testing.T) {
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/oauth2/token"})
	}))
	defer srv.Close()
	issuer = srv.URL
	c, err := LoadConsumers(write(t, "c.yaml", "issuer: "+issuer+"\naudience: [api]\nmtls:\n  client_id: consumers\n  client_secret_file: "+
		write(t, "secret", "s3cret\n")+"\n  allowed_peers: [spiffe://example.org/svc/gateway]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.MTLS.Source(t.Context(), c.Issuer, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ca_dir") {
		t.Fatalf("got %v, want an error saying the server needs ca_dir", err)
	}
}
