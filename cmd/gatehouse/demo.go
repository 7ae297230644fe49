package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-dev/gatehouse/demo"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

func newDemoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo service (orders, consumers) on its own, as a service of yours would run",
		Long: `demo runs one of the example services that "gatehouse dev" starts in
process, as a process of its own: it verifies access tokens with the
resource library, follows the revocation stream, and speaks mutual TLS with a
certificate from files or from the authorization server's issuance endpoint.
See docs/services.md.`,
	}
	cmd.AddCommand(
		newDemoServiceCommand("orders", "Run the orders service", runOrders),
		newDemoServiceCommand("consumers", "Run the consumers service", runConsumers))
	return cmd
}

func newDemoServiceCommand(name, short string, run func(context.Context, string, *slog.Logger) error) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   name + " --config FILE",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), file, newLogger())
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file (see docs/services.md)")
	cmd.MarkFlagRequired("config")
	return cmd
}

func runOrders(ctx context.Context, file string, logger *slog.Logger) error {
	c, err := config.LoadOrders(file)
	if err != nil {
		return err
	}
	s, err := startDemoService(ctx, &c.Service, logger)
	if err != nil {
		return err
	}
	defer s.close()
	v, err := s.verifier(c.Audience)
	if err != nil {
		return err
	}
	oc := demo.OrdersConfig{Verifier: v}
	if d := c.Consumers; d != nil {
		if oc.Client, err = d.Client(ctx, c.Issuer, s.src, logger); err != nil {
			return err
		}
		oc.ConsumersURL = strings.TrimSuffix(d.URL, "/")
	}
	return s.serve(ctx, demo.NewOrdersWith(oc), "orders")
}

func runConsumers(ctx context.Context, file string, logger *slog.Logger) error {
	c, err := config.LoadConsumers(file)
	if err != nil {
		return err
	}
	s, err := startDemoService(ctx, &c.Service, logger)
	if err != nil {
		return err
	}
	defer s.close()
	v, err := s.verifier(c.Audience)
	if err != nil {
		return err
	}
	sv, err := s.verifier([]string{c.ServiceAudience})
	if err != nil {
		return err
	}
	return s.serve(ctx, demo.NewConsumersWith(demo.ConsumersConfig{Verifier: v, ServiceVerifier: sv}), "consumers")
}

// demoService is what every demo service process has: its file's common
// part, its certificate source (nil without mtls) and its revocation
// receiver (nil without revocations).
type demoService struct {
	cfg      *config.Service
	logger   *slog.Logger
	src      config.Source
	stopSrc  func()
	receiver *ssf.Receiver
}

// startDemoService gets the service's certificate and builds its receiver.
func startDemoService(ctx context.Context, c *config.Service, logger *slog.Logger) (*demoService, error) {
	s := &demoService{cfg: c, logger: logger, stopSrc: func() {}}
	if c.MTLS != nil {
		src, stop, err := c.MTLS.Source(ctx, c.Issuer, logger)
		if err != nil {
			return nil, err
		}
		s.src, s.stopSrc = src, stop
	}
	r, err := c.Receiver(ctx, logger)
	if err != nil {
		s.close()
		return nil, err
	}
	s.receiver = r
	return s, nil
}

// verifier verifies the service's callers' tokens for audience, refusing
// the revoked ones.
func (s *demoService) verifier(audience []string) (*resource.Verifier, error) {
	var revocations resource.Revocations
	if s.receiver != nil {
		revocations = s.receiver
	}
	return s.cfg.Verifier(audience, revocations)
}

// serve follows the revocation stream and serves h until ctx is done.
func (s *demoService) serve(ctx context.Context, h http.Handler, name string) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.receiver != nil {
		g.Go(func() error {
			s.receiver.Run(ctx)
			return nil
		})
	}
	var tlsConfig *tls.Config
	if s.src != nil {
		tlsConfig = s.cfg.MTLS.ServerConfig(s.src, s.logger)
	} else {
		s.logger.Warn(name + ": no mtls block, serving plain http")
	}
	g.Go(func() error {
		return listenAndServeTLS(ctx, s.cfg.Listen, tlsConfig, h, s.logger, name, "issuer", s.cfg.Issuer, "mtls", s.src != nil)
	})
	return g.Wait()
}

func (s *demoService) close() { s.stopSrc() }
