package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// TestScaleOutExamples: the files of docs/examples/scale-out, the template
// of docs/scaling.md, stay valid: every key known, the service files pass
// their checks, the seed registers. (The gateway and authorization server
// files name secrets and certificates that exist only where they run, so
// they are decoded, not loaded.)
func TestScaleOutExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples", "scale-out")
	decode := func(v any) func(string) error {
		return func(path string) error {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return decodeStrict(data, v)
		}
	}
	tests := []struct {
		file string
		load func(path string) error
	}{
		{"authserver.yaml", decode(&AuthServer{})},
		{"gateway-a.yaml", decode(&Gateway{})},
		{"orders.yaml", func(p string) error { _, err := LoadOrders(p); return err }},
		{"consumers.yaml", func(p string) error { _, err := LoadConsumers(p); return err }},
		{"seed.yaml", func(p string) error {
			seed, err := LoadSeed(p)
			if err != nil {
				return err
			}
			st, err := OpenStore(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"))
			if err != nil {
				return err
			}
			defer st.Close()
			return seed.Apply(t.Context(), &accounts.Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if err := tt.load(filepath.Join(dir, tt.file)); err != nil {
				t.Fatalf("got %v, want the example to load", err)
			}
		})
	}
}
