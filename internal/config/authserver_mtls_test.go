package config

import (
	"strings"
	"testing"
)

func TestAuthServerMTLSBlock(t *testing.T) {
	const head = "issuer: https://auth.example.com\nstore: sqlite:x\n"
	tests := []struct {
		name    string
		body    string
		wantErr string // "" for success
		wantURL string
		want    string // server name
	}{
		{"with the CA", head + "ca_dir: /ca\nmtls:\n  listen: 127.0.0.1:9443\n", "", "https://127.0.0.1:9443", "authserver"},
		{"with files and a URL", head + "mtls:\n  listen: :8443\n  url: https://mtls.auth.example.com:8443\n  cert_file: c.pem\n  key_file: k.pem\n",
			"", "https://mtls.auth.example.com:8443", "authserver"},
		{"a server name", head + "ca_dir: /ca\nmtls:\n  listen: :8443\n  server_name: auth\n", "", "https://:8443", "auth"},
		{"no listen", head + "ca_dir: /ca\nmtls:\n  url: https://x\n", "listen is required", "", ""},
		{"a certificate without its key", head + "mtls:\n  listen: :8443\n  cert_file: c.pem\n", "go together", "", ""},
		{"neither files nor a CA", head + "mtls:\n  listen: :8443\n", "set ca_dir", "", ""},
		{"an http URL", head + "ca_dir: /ca\nmtls:\n  listen: :8443\n  url: http://x\n", "want an https URL", "", ""},
		{"a server name that is no service name", head + "ca_dir: /ca\nmtls:\n  listen: :8443\n  server_name: a/b\n", "not a service name", "", ""},
		{"an unknown key", head + "ca_dir: /ca\nmtls:\n  listen: :8443\n  client_ca: x\n", "client_ca", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadAuthServer(write(t, "as.yaml", tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MTLS.URL != tt.wantURL || c.MTLS.ServerName != tt.want {
				t.Fatalf("got url %q, server_name %q, want %q, %q", c.MTLS.URL, c.MTLS.ServerName, tt.wantURL, tt.want)
			}
		})
	}
}
