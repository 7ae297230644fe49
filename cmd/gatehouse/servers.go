package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/serve"
)

func newAuthServerCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "authserver --config FILE",
		Short: "Run the OAuth 2.0 authorization server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuthServer(cmd.Context(), file, newLogger())
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file (see docs/configuration.md)")
	cmd.MarkFlagRequired("config")
	return cmd
}

func runAuthServer(ctx context.Context, file string, logger *slog.Logger) error {
	c, err := config.LoadAuthServer(file)
	if err != nil {
		return err
	}
	kr, err := loadKeyring(c.MasterKeyFile)
	if err != nil {
		return err
	}
	st, err := config.OpenStore(ctx, c.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Seed != "" {
		seed, err := config.LoadSeed(c.Seed)
		if err != nil {
			return err
		}
		m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret)}
		if err := seed.Apply(ctx, m); err != nil {
			return err
		}
	}
	var issuer *ca.CA
	if c.CADir != "" {
		if issuer, err = ca.Open(ca.Config{Dir: c.CADir, Keyring: kr}); err != nil {
			return err
		}
	}
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: c.Issuer, Store: st, Keyring: kr, Audience: c.Audience, CA: issuer,
		AccessTokenTTL: c.AccessTokenTTL, RefreshTokenTTL: c.RefreshTokenTTL,
		RefreshAbsoluteTTL: c.RefreshAbsoluteTTL, RefreshGrace: c.Grace(),
		SigningAlgorithm: c.SigningAlgorithm, SessionTTL: c.SessionTTL, Logger: logger,
		LoginThrottle: authserver.LoginThrottle(c.LoginThrottle), KeyPublishDelay: c.KeyPublishDelay,
		KeyReloadInterval: c.KeyReloadInterval, GCInterval: c.GCInterval, EventRetention: c.EventRetention,
		PushPauseAfter: c.SSFPushPauseAfter, AdminToken: c.AdminToken, Registerer: prometheus.NewRegistry(),
		MTLS: mtlsConfig(c),
	})
	if err != nil {
		return err
	}
	if c.AdminToken == "" {
		logger.Warn("admin API disabled: set admin_token_file or " + config.EnvAdminToken + "; /metrics is still served")
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return as.Run(ctx) })
	g.Go(func() error {
		return listenAndServe(ctx, c.AdminListen, as.AdminHandler(), logger, "admin API")
	})
	g.Go(func() error {
		return listenAndServe(ctx, c.Listen, as, logger, "authorization server", "issuer", c.Issuer)
	})
	if c.MTLS != nil {
		g.Go(func() error { return serveMTLS(ctx, c, issuer, as, logger) })
	}
	return g.Wait()
}

// loadKeyring reads the master key from file, or else from the environment.
func loadKeyring(file string) (*keyring.Keyring, error) {
	if file != "" {
		return keyring.LoadFile(file, false)
	}
	kr, ok, err := keyring.FromEnv()
	if !ok {
		return nil, fmt.Errorf("no master key: set master_key_file or %s", keyring.EnvMasterKey)
	}
	return kr, err
}

// listenAndServe serves h over plain HTTP; see listenAndServeTLS.
func listenAndServe(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, what string, args ...any) error {
	return listenAndServeTLS(ctx, addr, nil, h, logger, what, args...)
}

// listenAndServeTLS listens on addr, logs "<what> ready" with addr= the
// address bound (how an operator, or a test that asked for port 0, learns
// it), and serves h until ctx is done: over TLS with cfg, or plain HTTP if
// cfg is nil.
func listenAndServeTLS(ctx context.Context, addr string, cfg *tls.Config, h http.Handler, logger *slog.Logger, what string, args ...any) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	logger.Info(what+" ready", append([]any{"addr", ln.Addr().String()}, args...)...)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return serve.Run(ctx, serve.NewServer(h, logger), ln)
}
