// Package config reads Gatehouse's YAML files — the seed file, the
// authorization server's and the gateway's configuration — strictly: an
// unknown key is an error that names its line. It converts them to the
// library Config structs and opens the store they name.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// decodeStrict decodes one YAML document into v, refusing unknown keys.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty document")
		}
		return err
	}
	return nil
}

// load reads and strictly decodes the YAML file at path.
func load(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := decodeStrict(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// OpenStore opens the store named by spec: "sqlite:PATH" or
// "postgres:DSN" (a postgres:// URL or key=value DSN).
func OpenStore(ctx context.Context, spec string) (store.Store, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("store %q: want sqlite:PATH or postgres:DSN", spec)
	}
	switch kind {
	case "sqlite":
		return sqlite.Open(ctx, arg)
	case "postgres", "postgresql":
		if !strings.Contains(arg, "://") && !strings.Contains(arg, "=") {
			arg = kind + ":" + arg // "postgres://..." split at the first colon
		}
		if strings.HasPrefix(arg, "//") {
			arg = kind + ":" + arg
		}
		return postgres.Open(ctx, arg)
	default:
		return nil, fmt.Errorf("store %q: unknown kind %q, want sqlite or postgres", spec, kind)
	}
}
