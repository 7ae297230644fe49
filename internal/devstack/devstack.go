// Package devstack assembles the whole Access Token pattern in one process —
// authorization server, gateway and the demo services — the way
// `gatehouse dev` runs it and the end-to-end tests and the load harness
// start it. Each part is built from the public packages only, as a user
// would wire them.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/demo"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/serve"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// Audience is the audience of the access tokens in the dev stack: the API
// behind the gateway. The gateway and both demo services accept it.
const Audience = "demo-api"

// GatewayClientID is the gateway's own confidential client.
const GatewayClientID = "gateway"

// OrdersClientID is the orders service's client, for token exchange.
const OrdersClientID = "orders"

// ConsumersAudience is the audience of tokens for the consumers service's
// service-to-service endpoint.
const ConsumersAudience = "consumers"

// Default addresses, per DESIGN.md.
const (
	DefaultGatewayAddr   = "127.0.0.1:8080"
	DefaultAuthAddr      = "127.0.0.1:9000"
	DefaultAdminAddr     = "127.0.0.1:9001"
	DefaultOrdersAddr    = "127.0.0.1:9101"
	DefaultConsumersAddr = "127.0.0.1:9102"
	DefaultDataDir       = ".gatehouse"
	databaseFile         = "gatehouse.db"
	masterKeyFile        = "master.key"
	adminTokenFile       = "admin.token"
)

// Options configure Start. Zero values give `gatehouse dev`'s defaults.
type Options struct {
	// DataDir holds the SQLite database, the master key and the CA; default
	// ".gatehouse".
	DataDir string
	// Seed to apply; if nil, the built-in demo seed with random passwords.
	Seed *config.Seed
	// Store to use instead of SQLite in DataDir (the master key stays in DataDir).
	Store store.Store
	// Addresses to listen on; "127.0.0.1:0" picks a free port.
	GatewayAddr, AuthAddr, OrdersAddr, ConsumersAddr string
	// AdminAddr is the authorization server's admin API and /metrics.
	AdminAddr string
	// MTLSAddr, if set, is the authorization server's mutual-TLS listener
	// (RFC 8705: certificate-bound tokens, tls_client_auth), with a
	// certificate of the stack's CA for the service "authserver". If
	// empty, there is none.
	MTLSAddr string
	// AccessTokenTTL; default 5m.
	AccessTokenTTL time.Duration
	// RefreshGrace; default 10s, negative turns it off.
	RefreshGrace time.Duration
	// PasswordParams; default password.Default.
	PasswordParams password.Params
	// Gateway, when set, adjusts the gateway's configuration before the
	// gateway is built (tests: session settings, a counting transport).
	Gateway func(*gateway.Config)
	// Wrap, when set, wraps each upstream service's handler (name is
	// "orders" or "consumers"), e.g. to observe what reaches it.
	Wrap func(name string, h http.Handler) http.Handler
	// RevocationDelivery is how the gateway's and the services' receivers
	// get revocation events: DeliveryPoll (if empty) or DeliveryPush, to
	// endpoints on a loopback listener of their own (revocations.go).
	RevocationDelivery string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Stack is a running dev stack.
type Stack struct {
	GatewayURL, IssuerURL, OrdersURL, ConsumersURL string
	TokenURL                                       string
	// MTLSURL is the authorization server's mutual-TLS listener, if
	// Options.MTLSAddr asked for one.
	MTLSURL string
	// Users and Clients hold the seed that was applied, with the plain
	// passwords and secrets (random ones for the built-in seed).
	Seed *config.Seed
	// Store is the stack's store.
	Store store.Store
	// AdminURL is the admin API; AdminToken, generated at each start and
	// written to admin.token in the data folder, authenticates to it.
	AdminURL, AdminToken string
	// AdminTokenFile is where AdminToken is written.
	AdminTokenFile string
	// CA issues the service certificates; it lives in the data folder.
	CA *ca.CA
	// Receivers are the Shared Signals receivers of the gateway and the
	// demo services, by part name (GatewayClientID, OrdersClientID,
	// ConsumersPart): each follows the authorization server's stream with
	// its own client (ReceiverClientID) and is its part's Revocations.
	Receivers map[string]*ssf.Receiver
	// PushURL is the base of the receivers' push endpoints, each at
	// PushURL/<part>, with RevocationDelivery DeliveryPush; else "".
	PushURL string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
	owned  store.Store // closed by Close when Start opened it
	mesh   *mesh
}

// Start listens on every address, builds the parts and serves them until
// Close or ctx is done.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	o.setDefaults()
	ctx, cancel := context.WithCancel(ctx)
	s := &Stack{cancel: cancel, errs: make(chan error, 8)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := checkDelivery(o.RevocationDelivery); err != nil {
		return nil, err
	}
	lns, err := listenAll(o.AuthAddr, o.OrdersAddr, o.ConsumersAddr, o.GatewayAddr, o.AdminAddr, pushAddr(o))
	if err != nil {
		return nil, err
	}
	authLn, ordersLn, consumersLn, gatewayLn, adminLn := lns[0], lns[1], lns[2], lns[3], lns[4]
	var pushLn net.Listener
	if len(lns) > 5 {
		pushLn = lns[5]
		s.PushURL = "http://" + pushLn.Addr().String() + pushPath
	}
	s.AdminURL = "http://" + adminLn.Addr().String()
	s.IssuerURL = "http://" + authLn.Addr().String()
	s.OrdersURL = "https://" + ordersLn.Addr().String()
	s.ConsumersURL = "https://" + consumersLn.Addr().String()
	s.GatewayURL = "http://" + gatewayLn.Addr().String()

	kr, err := keyring.LoadFile(filepath.Join(o.DataDir, masterKeyFile), true)
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	if err := s.openStore(ctx, o); err != nil {
		closeAll(lns)
		return nil, err
	}
	secrets, err := s.seed(ctx, o, kr)
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	s.AdminTokenFile = filepath.Join(o.DataDir, adminTokenFile)
	if s.AdminToken, err = writeAdminToken(s.AdminTokenFile); err != nil {
		closeAll(lns)
		return nil, err
	}
	if s.mesh, err = startMesh(ctx, o.DataDir, kr, o.Logger); err != nil {
		closeAll(lns)
		return nil, err
	}
	s.CA = s.mesh.ca
	mtlsLn, mtlsConfig, err := s.listenMTLS(ctx, o)
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: s.IssuerURL, Store: s.Store, Keyring: kr, Audience: []string{Audience}, CA: s.CA,
		AccessTokenTTL: o.AccessTokenTTL, RefreshGrace: o.RefreshGrace, PasswordParams: o.PasswordParams,
		Logger: o.Logger.With("component", "authserver"), AdminToken: s.AdminToken, MTLS: mtlsConfig,
	})
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	s.TokenURL = as.TokenURL()
	if err := s.newReceivers(o, secrets.receivers); err != nil {
		closeAll(lns)
		return nil, err
	}
	gc := s.gatewayConfig(o, secrets.gateway)
	if o.Gateway != nil {
		o.Gateway(&gc)
	}
	gw, err := gateway.New(gc)
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	s.serve(ctx, o, authLn, as)
	s.serve(ctx, o, adminLn, as.AdminHandler())
	if mtlsLn != nil {
		s.serve(ctx, o, mtlsLn, as.MTLSHandler())
	}
	s.runBackground(ctx, as)
	s.runReceivers(ctx)
	if pushLn != nil {
		s.serve(ctx, o, pushLn, s.pushHandler())
	}
	orders, consumers := s.services(secrets.orders)
	s.serve(ctx, o, s.mesh.listener(ordersLn, "orders"), o.Wrap("orders", orders))
	s.serve(ctx, o, s.mesh.listener(consumersLn, "consumers"), o.Wrap("consumers", consumers))
	s.serve(ctx, o, gatewayLn, gw)
	return s, nil
}

func (o *Options) setDefaults() {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.GatewayAddr, DefaultGatewayAddr)
	def(&o.AuthAddr, DefaultAuthAddr)
	def(&o.AdminAddr, DefaultAdminAddr)
	def(&o.OrdersAddr, DefaultOrdersAddr)
	def(&o.ConsumersAddr, DefaultConsumersAddr)
	if o.Wrap == nil {
		o.Wrap = func(_ string, h http.Handler) http.Handler { return h }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// listenAll listens on every address; an empty one is skipped.
func listenAll(addrs ...string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		if a == "" {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func (s *Stack) openStore(ctx context.Context, o Options) error {
	if o.Store != nil {
		s.Store = o.Store
		return nil
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, filepath.Join(o.DataDir, databaseFile))
	if err != nil {
		return err
	}
	s.Store, s.owned = st, st
	return nil
}

// partSecrets are the client secrets of the stack's own parts.
type partSecrets struct {
	gateway, orders string
	receivers       map[string]string // by part, see ReceiverClientID
}

// seed applies the seed and registers the clients of the gateway and of the
// orders service, and every part's SSF receiver client, with fresh
// secrets, which it returns.
func (s *Stack) seed(ctx context.Context, o Options, kr *keyring.Keyring) (partSecrets, error) {
	m := &accounts.Manager{Store: s.Store, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: o.PasswordParams}
	s.Seed = o.Seed
	if s.Seed == nil {
		s.Seed = DemoSeed()
	}
	if err := s.Seed.Apply(ctx, m); err != nil {
		return partSecrets{}, err
	}
	var ps partSecrets
	var err error
	_, ps.gateway, err = m.PutClient(ctx, accounts.ClientSpec{ID: GatewayClientID,
		Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, TrustedProxy: true})
	if err != nil {
		return partSecrets{}, err
	}
	// orders exchanges its caller's token for one whose audience is
	// consumers (RFC 8693) when it asks consumers about the caller.
	_, ps.orders, err = m.PutClient(ctx, accounts.ClientSpec{ID: OrdersClientID,
		Grants: []string{oauth.GrantTokenExchange}, ExchangeAudiences: []string{ConsumersAudience}})
	if err != nil {
		return partSecrets{}, err
	}
	ps.receivers, err = s.seedReceivers(ctx, m)
	return ps, err
}

// services builds the demo services as a user would: orders verifies its
// callers' tokens and, before creating an order, asks consumers about the
// caller over mTLS with the caller's token exchanged for the consumers
// audience; consumers accepts API tokens on /consumers/me and only
// consumers-audience tokens on its service endpoint.
func (s *Stack) services(ordersSecret string) (orders, consumers http.Handler) {
	exchange := &outbound.Exchange{TokenURL: s.TokenURL, ClientID: OrdersClientID, ClientSecret: ordersSecret,
		Audience: ConsumersAudience}
	toConsumers := &http.Client{Timeout: 10 * time.Second,
		Transport: &outbound.Transport{Source: exchange, Base: s.mesh.transportAs("orders", "consumers")}}
	orders = demo.NewOrdersWith(demo.OrdersConfig{Verifier: s.verifierFor(OrdersClientID, Audience),
		ConsumersURL: s.ConsumersURL, Client: toConsumers})
	consumers = demo.NewConsumersWith(demo.ConsumersConfig{Verifier: s.verifierFor(ConsumersPart, Audience),
		ServiceVerifier: s.verifierFor(ConsumersPart, ConsumersAudience)})
	return orders, consumers
}

// DemoSeed is the built-in seed: alice and bob (consumer), carol (consumer,
// admin), each with a fresh random password, and a client "cli" for trying
// the bearer flow.
func DemoSeed() *config.Seed {
	pw := func() string { return keyring.RandomToken(12) }
	return &config.Seed{
		Users: []config.SeedUser{
			{Username: "alice", Password: pw(), Roles: []string{"consumer"}},
			{Username: "bob", Password: pw(), Roles: []string{"consumer"}},
			{Username: "carol", Password: pw(), Roles: []string{"consumer", "admin"}},
		},
		Clients: []config.SeedClient{{ID: "cli", Secret: keyring.RandomToken(32),
			Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken, oauth.GrantClientCredentials},
			Scopes: []string{"orders"}}},
	}
}

// verifierFor is the verifier of the part for tokens of audience: it
// refuses the tokens the part's receiver learnt were revoked.
func (s *Stack) verifierFor(part, audience string) *resource.Verifier {
	v, err := resource.NewVerifier(resource.Config{Issuer: s.IssuerURL, Audience: []string{audience},
		Revocations: s.Receivers[part]})
	if err != nil {
		panic(err) // Issuer and Audience are set above
	}
	return v
}

// gatewayConfig is the dev gateway: /api/admin/orders needs role admin and
// goes to orders' /orders; /api/orders to orders; /api/consumers to consumers.
// Each route reaches its upstream over mTLS, expecting its SPIFFE ID.
// Browser sessions are on: /login and /logout, with __Host- cookies, which
// Chromium keeps on http://127.0.0.1 (docs/sessions.md).
func (s *Stack) gatewayConfig(o Options, secret string) gateway.Config {
	toOrders := s.mesh.transport("orders")
	return gateway.Config{
		Issuer: s.IssuerURL, Audience: []string{Audience}, TokenURL: s.TokenURL,
		ClientID: GatewayClientID, ClientSecret: secret,
		Routes: []gateway.Route{
			{Prefix: "/api/admin/orders", Upstream: s.OrdersURL, StripPrefix: "/api/admin",
				Rules: []gateway.Rule{{Roles: []string{"admin"}}}, Transport: toOrders},
			{Prefix: "/api/orders", Upstream: s.OrdersURL, StripPrefix: "/api", Transport: toOrders},
			{Prefix: "/api/consumers", Upstream: s.ConsumersURL, StripPrefix: "/api", Transport: s.mesh.transport("consumers")},
		},
		Session:     gateway.SessionConfig{Enabled: true},
		Revocations: s.Receivers[GatewayClientID],
		Logger:      o.Logger.With("component", "gateway"),
	}
}

func (s *Stack) serve(ctx context.Context, o Options, ln net.Listener, h http.Handler) {
	srv := serve.NewServer(h, o.Logger)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve.Run(ctx, srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			s.cancel()
		}
	}()
}

// Wait blocks until the stack stops and returns the first serving error.
func (s *Stack) Wait() error {
	s.wg.Wait()
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}

// Close stops every listener gracefully and closes the store Start opened.
func (s *Stack) Close() error {
	s.cancel()
	err := s.Wait()
	if s.mesh != nil {
		s.mesh.Close()
		s.mesh = nil
	}
	if s.owned != nil {
		err = errors.Join(err, s.owned.Close())
		s.owned = nil
	}
	return err
}

// writeAdminToken generates the admin token of this run and writes it to
// the data folder (mode 0600), for `gatehouse user ... --admin URL
// --admin-token-file DATA/admin.token`.
func writeAdminToken(path string) (string, error) {
	token := keyring.RandomToken(32)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// runBackground runs the authorization server's key reloads and garbage
// collection until the stack stops.
func (s *Stack) runBackground(ctx context.Context, as *authserver.Server) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := as.Run(ctx); err != nil {
			s.errs <- fmt.Errorf("authorization server background work: %w", err)
			s.cancel()
		}
	}()
}
