package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// adminFlags choose where the user, client and keys commands act: through a
// running server's admin API (--admin URL), or directly on a store.
type adminFlags struct {
	store          string
	keyFile        string
	admin          string
	adminTokenFile string
	publishDelay   time.Duration // keys rotate on a store
}

func (f *adminFlags) register(cmd *cobra.Command) {
	p := cmd.PersistentFlags()
	p.StringVar(&f.store, "store", "sqlite:.gatehouse/gatehouse.db", "store: sqlite:PATH or postgres:DSN (unless --admin)")
	p.StringVar(&f.keyFile, "key-file", "", "master key file, for client secrets and signing keys (default: master.key beside a SQLite store, else $"+keyring.EnvMasterKey+")")
	p.StringVar(&f.admin, "admin", "", "use a running server's admin API at this URL (e.g. http://127.0.0.1:9001) instead of --store")
	p.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin token (default: $"+adminapi.EnvToken+")")
}

// run returns a RunE that calls fn with the chosen Service. needKeyring:
// on a store, the command fails without the master key.
func (f *adminFlags) run(needKeyring bool, fn func(*cobra.Command, adminapi.Service, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		svc, done, err := f.service(cmd, needKeyring)
		if err != nil {
			return err
		}
		defer done()
		return fn(cmd, svc, args)
	}
}

func (f *adminFlags) service(cmd *cobra.Command, needKeyring bool) (adminapi.Service, func(), error) {
	if f.admin != "" {
		if cmd.Flags().Changed("store") || cmd.Flags().Changed("key-file") {
			return nil, nil, errors.New("--admin and --store/--key-file are exclusive")
		}
		token, err := f.adminToken()
		if err != nil {
			return nil, nil, err
		}
		return &adminapi.Remote{URL: f.admin, Token: token}, func() {}, nil
	}
	return f.local(cmd.Context(), cmd, needKeyring)
}

// adminToken reads --admin-token-file, or else the environment.
func (f *adminFlags) adminToken() (string, error) {
	if f.adminTokenFile != "" {
		b, err := os.ReadFile(f.adminTokenFile)
		if err != nil {
			return "", fmt.Errorf("--admin-token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if v := os.Getenv(adminapi.EnvToken); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("--admin needs the admin token: use --admin-token-file or set %s", adminapi.EnvToken)
}

// local returns an authserver.Admin on the store.
func (f *adminFlags) local(ctx context.Context, cmd *cobra.Command, needKeyring bool) (adminapi.Service, func(), error) {
	kr, err := f.keyring()
	if err != nil && needKeyring {
		return nil, nil, err
	}
	st, err := config.OpenStore(ctx, f.store)
	if err != nil {
		return nil, nil, err
	}
	admin, err := authserver.NewAdmin(authserver.AdminConfig{Store: st, Keyring: kr, KeyPublishDelay: f.publishDelayOrNow(),
		Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return admin, func() { st.Close() }, nil
}

// publishDelayOrNow maps a --publish-delay of 0 to AdminConfig's "at once".
func (f *adminFlags) publishDelayOrNow() time.Duration {
	if f.publishDelay == 0 {
		return -1
	}
	return f.publishDelay
}

// keyring finds the master key: --key-file, the environment, or master.key
// beside a SQLite database (where `gatehouse dev` keeps it).
func (f *adminFlags) keyring() (*keyring.Keyring, error) {
	if f.keyFile != "" {
		return keyring.LoadFile(f.keyFile, false)
	}
	if kr, ok, err := keyring.FromEnv(); ok {
		return kr, err
	}
	if path, ok := strings.CutPrefix(f.store, "sqlite:"); ok {
		return keyring.LoadFile(filepath.Join(filepath.Dir(path), "master.key"), false)
	}
	return nil, fmt.Errorf("no master key: use --key-file or set %s", keyring.EnvMasterKey)
}
