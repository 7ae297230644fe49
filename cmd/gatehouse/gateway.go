package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

func newGatewayCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "gateway --config FILE",
		Short: "Run the API gateway (SIGHUP reloads the configuration file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGateway(cmd.Context(), file, newLogger())
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML configuration file (see docs/gateway.md)")
	cmd.MarkFlagRequired("config")
	return cmd
}

func runGateway(ctx context.Context, file string, logger *slog.Logger) error {
	p, err := newGatewayProcess(file, logger)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go p.reloadOn(ctx, hup)
	if p.receiver != nil {
		go p.receiver.Run(ctx)
	}
	return p.serve(ctx)
}

// gatewayProcess is a running `gatehouse gateway`: the file it reads, the
// handler a reload swaps the new Gateway into, and what outlives a reload.
type gatewayProcess struct {
	file     string
	logger   *slog.Logger
	registry *prometheus.Registry
	// phantomKey signs phantom tokens when the file names no key: one per
	// process, so that services keep verifying them across reloads.
	phantomKey crypto.Signer
	handler    gateway.AtomicHandler
	// listen and adminListen are those of the first load: a reload cannot
	// move a listener.
	listen, adminListen string
	// receiver follows the revocation stream, if the file's first load asked
	// for one; it outlives reloads. With push delivery, the admin listener
	// serves its push endpoint.
	receiver *ssf.Receiver
	push     bool
}

func newGatewayProcess(file string, logger *slog.Logger) (*gatewayProcess, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p := &gatewayProcess{file: file, logger: logger, registry: reg, phantomKey: key}
	c, g, err := p.load()
	if err != nil {
		return nil, err
	}
	p.listen, p.adminListen = c.Listen, c.AdminListen
	p.handler.Store(g)
	return p, nil
}

// load reads the file and builds a Gateway from it.
func (p *gatewayProcess) load() (*config.Gateway, *gateway.Gateway, error) {
	c, gc, err := config.LoadGateway(p.file)
	if err != nil {
		return nil, nil, err
	}
	if c.Revocations != nil && p.receiver == nil {
		if p.receiver, err = c.Revocations.Receiver(context.Background(), gc.Issuer, gc.TokenURL, p.logger); err != nil {
			return nil, nil, err
		}
		p.push = c.Revocations.Delivery == config.DeliveryPush
	}
	if p.receiver != nil {
		gc.Revocations = p.receiver
	}
	gc.Logger, gc.Registerer = p.logger, p.registry
	if c.AccessLogOn() {
		gc.AccessLog = p.logger
	}
	if gc.Opaque != nil && gc.Opaque.SigningKey == nil {
		gc.Opaque.SigningKey = p.phantomKey
	}
	g, err := gateway.New(gc)
	if err != nil {
		return nil, nil, err
	}
	return c, g, nil
}

// reload re-reads the file and swaps the new Gateway in: requests in flight
// finish on the old one. A file that does not load is logged and returned,
// and the running Gateway stays.
func (p *gatewayProcess) reload() error {
	c, g, err := p.load()
	if err != nil {
		p.logger.Error("reload failed; the running configuration stays", "file", p.file, "err", err)
		return err
	}
	if c.Listen != p.listen || c.AdminListen != p.adminListen {
		p.logger.Warn("listen and admin_listen change only on restart", "listen", p.listen, "admin_listen", p.adminListen)
	}
	p.handler.Store(g)
	p.logger.Info("configuration reloaded", "file", p.file)
	return nil
}

// reloadOn reloads on every signal until ctx is done.
func (p *gatewayProcess) reloadOn(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signals:
			p.reload()
		}
	}
}

// adminHandler serves /metrics, /healthz and /readyz, and with push
// delivery of revocations the receiver's push endpoint (config.PushPath):
// the admin listener is the internal one, where only the authorization
// server needs to reach it, and no route can shadow it.
func (p *gatewayProcess) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", &p.handler) // answered by the Gateway itself, never routed
	mux.Handle("GET /readyz", &p.handler)
	if p.push {
		mux.Handle(config.PushPath, p.receiver.PushHandler())
	}
	return mux
}

// serve runs the public listener and, if configured, the admin listener
// until ctx is done or one fails.
func (p *gatewayProcess) serve(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		return listenAndServe(ctx, p.listen, &p.handler, p.logger, "gateway", "config", p.file)
	})
	if p.adminListen != "" {
		eg.Go(func() error {
			return listenAndServe(ctx, p.adminListen, p.adminHandler(), p.logger, "gateway admin")
		})
	}
	return eg.Wait()
}
