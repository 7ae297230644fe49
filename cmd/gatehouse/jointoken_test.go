package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// TestCAJoinTokenOnAStore: a tls_client_auth, certificate-bound client
// registered with `client add`, then a join token for it from
// `ca join-token`, stored only hashed.
func TestCAJoinTokenOnAStore(t *testing.T) {
	dir := t.TempDir()
	kr, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "client", "add", "orders", "--auth-method", "tls_client_auth", "--certificate-bound", "--store", db)
	if err != nil || strings.Contains(out, "secret") {
		t.Fatalf("client add: got %q, %v, want a client without a secret", out, err)
	}
	if _, err := run(t, "", "ca", "join-token", "--name", "billing", "--store", db); err == nil {
		t.Fatalf("join token for an unregistered service: got nil error, want one")
	}
	if _, err := run(t, "", "ca", "join-token", "--name", "orders", "--ttl", "200h", "--store", db); err == nil {
		t.Fatalf("join token for 200h: got nil error, want the lifetime refused")
	}
	before := time.Now()
	out, err = run(t, "", "ca", "join-token", "--name", "orders", "--ttl", "30m", "--store", db)
	if err != nil {
		t.Fatalf("ca join-token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(context.Background(), "orders")
	if err != nil || c.AuthMethod != store.AuthTLSClientAuth || !c.CertificateBound || c.SecretHash != "" {
		t.Fatalf("client: got %+v, %v, want tls_client_auth, certificate-bound, no secret", c, err)
	}
	jt, err := st.GetJoinToken(context.Background(), kr.Hasher(keyring.PurposeJoinToken).Hash(token))
	if err != nil || jt.Name != "orders" || jt.ExpiresAt.Before(before.Add(30*time.Minute)) || jt.ExpiresAt.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("stored join token: got %+v, %v, want one for orders expiring in 30m", jt, err)
	}
}
