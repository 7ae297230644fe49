// Package archtest keeps DESIGN.md's dependency rules true: what services
// import links no server and no SQL, the gateway talks to the authorization
// server over HTTP only, and storage knows no HTTP.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/gatehouse-dev/gatehouse/"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestDependencyRules(t *testing.T) {
	sql := []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite"}
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"resource", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"outbound", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"ssf", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"grpcauth", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"pki", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store", mod + "internal/ca", mod + "internal/devstack"}, sql...)},
		{"pki/pkitest", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"internal/ca", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store"}, sql...)},
		{"demo", append([]string{mod + "authserver", mod + "gateway", mod + "internal/store", mod + "internal/devstack"}, sql...)},
		{"gateway", append([]string{mod + "authserver", mod + "internal/store"}, sql...)},
		{"authserver", []string{mod + "gateway"}},
		{"internal/store", []string{mod + "authserver", mod + "gateway", "net/http"}},
		{"internal/store/sqlite", []string{mod + "authserver", mod + "gateway", "net/http"}},
		{"internal/store/postgres", []string{mod + "authserver", mod + "gateway", "net/http"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			for _, d := range deps(t, tt.pkg) {
				for _, f := range tt.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s, which DESIGN.md forbids", tt.pkg, d)
					}
				}
			}
		})
	}
}
