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
