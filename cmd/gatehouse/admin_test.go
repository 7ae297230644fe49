package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// run executes the CLI in-process with stdin and returns its output.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	if _, err := run(t, "s3cret-password\n", "user", "add", "dave", "--roles", "consumer,admin", "--store", db); err != nil {
		t.Fatalf("user add: %v", err)
	}
	if _, err := run(t, "another-pass\n", "user", "add", "dave", "--store", db); err == nil {
		t.Fatalf("got no error adding dave twice, want already exists")
	}
	if _, err := run(t, "short\n", "user", "add", "erin", "--store", db); err == nil {
		t.Fatalf("got no error for a 5-character password, want a rule violation")
	}
	out, err := run(t, "", "user", "list", "--store", db)
	if err != nil || !strings.Contains(out, "dave") || !strings.Contains(out, "consumer,admin") {
		t.Fatalf("user list: got %q, %v, want dave with roles consumer,admin", out, err)
	}
	if strings.Contains(out, "s3cret-password") {
		t.Fatalf("user list shows the password")
	}
	if _, err := run(t, "new-password-1\n", "user", "passwd", "dave", "--store", db); err != nil {
		t.Fatalf("user passwd: %v", err)
	}
	if _, err := run(t, "", "user", "disable", "dave", "--store", db); err != nil {
		t.Fatalf("user disable: %v", err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUser(context.Background(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled {
		t.Errorf("got Disabled false after user disable, want true")
	}
	if ok, _, _ := password.Verify("new-password-1", u.PasswordHash, password.Default); !ok {
		t.Errorf("got the old password after user passwd, want the new one")
	}
	if _, err := run(t, "", "user", "disable", "nobody", "--store", db); err == nil {
		t.Errorf("got no error disabling an unknown user")
	}
}

func TestClientAddPrintsSecretOnceAndStoresItHashed(t *testing.T) {
	dir := t.TempDir()
	kr, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "client", "add", "billing", "--grants", "client_credentials", "--scopes", "orders", "--store", db)
	if err != nil {
		t.Fatalf("client add: %v\n%s", err, out)
	}
	_, secret, ok := strings.Cut(out, "client secret (shown once, stored only hashed): ")
	secret = strings.TrimSpace(secret)
	if !ok || len(secret) < 43 {
		t.Fatalf("got output %q, want a printed secret of at least 256 bits", out)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(context.Background(), "billing")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretHash == secret || !kr.Hasher(keyring.PurposeClientSecret).Verify(secret, c.SecretHash) {
		t.Fatalf("got secret hash %q, want the keyed hash of the printed secret", c.SecretHash)
	}
	list, err := run(t, "", "client", "list", "--store", db)
	if err != nil || !strings.Contains(list, "billing") || strings.Contains(list, secret) {
		t.Fatalf("client list: got %q, %v, want billing without its secret", list, err)
	}
	if _, err := run(t, "", "client", "add", "bad", "--grants", "implicit", "--store", db); err == nil {
		t.Fatalf("got no error for an unknown grant")
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("got %q, %v, want a version line", out, err)
	}
}

func TestClientAddTokenSettings(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "client", "add", "orders-svc", "--grants", "client_credentials,"+oauth.GrantTokenExchange,
		"--access-token-format", "opaque", "--access-token-ttl", "2m", "--refresh-token-ttl", "1h",
		"--refresh-absolute-ttl", "8h", "--exchange-audiences", "consumers,https://ledger.example/", "--store", db)
	if err != nil {
		t.Fatalf("client add: %v\n%s", err, out)
	}
	list, err := run(t, "", "client", "list", "--store", db)
	if err != nil || !strings.Contains(list, "opaque") {
		t.Errorf("client list: got %q, %v, want the opaque format shown", list, err)
	}
	if out, err := run(t, "", "client", "add", "billing", "--grants", "client_credentials", "--certificate-bound", "--store", db); err != nil {
		t.Fatalf("client add --certificate-bound: %v\n%s", err, out)
	}
	list, err = run(t, "", "client", "list", "--store", db)
	if err != nil || !strings.Contains(list, "jwt,certificate-bound") || strings.Count(list, "certificate-bound") != 1 {
		t.Errorf("client list: got %q, %v, want billing shown certificate-bound and orders-svc not", list, err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(context.Background(), "orders-svc")
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenFormat != store.FormatOpaque || c.AccessTokenTTL != 2*time.Minute || c.RefreshTokenTTL != time.Hour ||
		c.RefreshAbsoluteTTL != 8*time.Hour || !slices.Equal(c.ExchangeAudiences, []string{"consumers", "https://ledger.example/"}) {
		t.Errorf("got %+v, want the flags' format, lifetimes and exchange audiences", c)
	}
	for _, args := range [][]string{
		{"--access-token-format", "paseto"},
		{"--access-token-ttl=-1m"},
		{"--exchange-audiences", "consumers"}, // without the token-exchange grant
	} {
		if _, err := run(t, "", append([]string{"client", "add", "bad", "--store", db}, args...)...); err == nil {
			t.Errorf("client add %v: got no error, want a rule violation", args)
		}
	}
}
