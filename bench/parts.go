package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/serve"
)

// The seeded identities the gateway scenarios use.
const (
	benchClientID = "bench"
	benchUser     = "bench-user"
)

// scenario is one thing to measure: requests to one of the running parts,
// from next. Most scenarios send the same request every time; as-refresh
// sends each refresh token once.
type scenario struct {
	name string
	next vegeta.Targeter // safe for concurrent use
}

// scenarioNames lists every scenario in the order they run and print; the
// PostgreSQL variants of the authorization-server scenarios (pgNames) come
// last.
var scenarioNames = append([]string{"baseline", "reverseproxy", "gateway-bearer", "gateway-basic"}, asScenarioNames...)

// pgNames are the PostgreSQL variants of the authorization-server scenarios.
func pgNames() []string {
	var names []string
	for _, n := range asScenarioNames {
		names = append(names, n+pgSuffix)
	}
	return names
}

// partsConfig configures startParts.
type partsConfig struct {
	// DataDir holds the dev stack's SQLite database and master key.
	DataDir string
	// TokenTTL is the access token lifetime; it must outlast the run, or the
	// bearer token expires and the Basic cache refills mid-measurement.
	TokenTTL time.Duration
	// Logger receives the parts' warnings.
	Logger *slog.Logger
	// Scenarios are the names of the scenarios to build; the
	// authorization-server stacks start only for theirs.
	Scenarios []string
	// Postgres is the DSN of the database of the "-pg" scenarios; the parts
	// create a schema of their own in it and drop it on Close.
	Postgres string
	// RefreshPool is the number of refresh tokens to mint for as-refresh,
	// per store.
	RefreshPool int
	// Minters is the number of password grants in flight while minting.
	Minters int
}

// parts are the servers under test, all on loopback: the trivial upstream,
// a plain reverse proxy and a gateway in front of it, and the dev stack
// whose authorization server the gateway trusts.
type parts struct {
	scenarios []scenario

	stack   *devstack.Stack
	stacks  []*devstack.Stack // the authorization-server scenarios'
	closeDB func() error      // closes the PostgreSQL store and drops its schema

	// The gateway stack's token endpoint and seeded credentials, for timing
	// password grants.
	tokenURL, clientSecret, userPassword string
	cancel                               context.CancelFunc
	wg                                   sync.WaitGroup
}

// startParts starts every part and returns the scenarios against them. The
// caller must Close the parts.
func startParts(ctx context.Context, cfg partsConfig) (_ *parts, err error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &parts{cancel: cancel}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	userPassword, clientSecret := rand.Text(), rand.Text()
	p.stack, err = devstack.Start(ctx, devstack.Options{
		DataDir: cfg.DataDir, Seed: benchSeed(userPassword, clientSecret), Logger: cfg.Logger,
		GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		AccessTokenTTL: cfg.TokenTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("start dev stack: %w", err)
	}
	upstreamURL, err := p.serve(ctx, cfg.Logger, trivialHandler())
	if err != nil {
		return nil, err
	}
	// One tuned transport for the plain proxy and the gateway, so they
	// differ only in what they do per request.
	transport := gateway.NewTransport()
	proxyURL, err := p.serve(ctx, cfg.Logger, reverseProxy(upstreamURL, transport))
	if err != nil {
		return nil, err
	}
	gatewayURL, err := p.startGateway(ctx, cfg.Logger, upstreamURL, transport, clientSecret)
	if err != nil {
		return nil, err
	}
	p.tokenURL, p.clientSecret, p.userPassword = p.stack.TokenURL, clientSecret, userPassword
	token, err := passwordGrant(ctx, p.stack.TokenURL, clientSecret, userPassword)
	if err != nil {
		return nil, err
	}
	basic := base64.StdEncoding.EncodeToString([]byte(benchUser + ":" + userPassword))
	all := []scenario{
		{name: "baseline", next: get(upstreamURL+"/hello", "")},
		{name: "reverseproxy", next: get(proxyURL+"/hello", "")},
		{name: "gateway-bearer", next: get(gatewayURL+"/api/hello", "Bearer "+token)},
		{name: "gateway-basic", next: get(gatewayURL+"/api/hello", "Basic "+basic)},
	}
	as, err := p.startAS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	all = append(all, as...)
	for _, name := range cfg.Scenarios { // in the order given
		if i := slices.IndexFunc(all, func(sc scenario) bool { return sc.name == name }); i >= 0 {
			p.scenarios = append(p.scenarios, all[i])
		}
	}
	return p, nil
}

// startAS starts the authorization-server stacks that the selected
// scenarios need, on SQLite and, with cfg.Postgres, on PostgreSQL.
func (p *parts) startAS(ctx context.Context, cfg partsConfig) ([]scenario, error) {
	var scs []scenario
	for _, pg := range []bool{false, true} {
		suffix := ""
		if pg {
			suffix = pgSuffix
		}
		var want, refresh bool
		for _, n := range asScenarioNames {
			want = want || slices.Contains(cfg.Scenarios, n+suffix)
		}
		refresh = slices.Contains(cfg.Scenarios, "as-refresh"+suffix)
		if !want {
			continue
		}
		ac := asConfig{DataDir: filepath.Join(cfg.DataDir, "as"+suffix), Suffix: suffix, TokenTTL: cfg.TokenTTL,
			Minters: max(cfg.Minters, 1), Logger: cfg.Logger}
		if refresh {
			ac.RefreshPool = cfg.RefreshPool
		}
		if pg {
			if cfg.Postgres == "" {
				return nil, errors.New("the -pg scenarios need -postgres")
			}
			st, closeDB, err := openPostgres(ctx, cfg.Postgres)
			if err != nil {
				return nil, err
			}
			ac.Store, p.closeDB = st, closeDB
		}
		stack, s, err := startAS(ctx, ac)
		if err != nil {
			return nil, err
		}
		p.stacks = append(p.stacks, stack)
		scs = append(scs, s...)
	}
	return scs, nil
}

// benchSeed is one user and one confidential client allowed the password
// grant: the gateway turns Basic credentials into tokens with it, and the
// harness gets its bearer token with it.
func benchSeed(userPassword, clientSecret string) *config.Seed {
	return &config.Seed{
		Users: []config.SeedUser{{Username: benchUser, Password: userPassword, Roles: []string{"consumer"}}},
		Clients: []config.SeedClient{{ID: benchClientID, Secret: clientSecret,
			Grants: []string{oauth.GrantPassword}}},
	}
}

// trivialHandler is the upstream of every scenario: a small JSON body and
// nothing else, so what is measured is the path in front of it.
func trivialHandler() http.Handler {
	body := []byte(`{"status":"ok","service":"bench-upstream"}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

// reverseProxy is the plain proxy the gateway is compared with: nothing but
// SetURL.
func reverseProxy(upstreamURL string, transport http.RoundTripper) *httputil.ReverseProxy {
	upstream, _ := url.Parse(upstreamURL) // from our own listener
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upstream) },
		Transport: transport,
	}
}

// startGateway serves a gateway with one route, /api to the upstream, that
// trusts the dev stack's authorization server and turns Basic credentials
// into tokens as the seeded client.
func (p *parts) startGateway(ctx context.Context, logger *slog.Logger, upstreamURL string,
	transport http.RoundTripper, clientSecret string) (string, error) {
	gw, err := gateway.New(gateway.Config{
		Issuer: p.stack.IssuerURL, Audience: []string{devstack.Audience}, TokenURL: p.stack.TokenURL,
		ClientID: benchClientID, ClientSecret: clientSecret,
		Routes:    []gateway.Route{{Prefix: "/api", Upstream: upstreamURL, StripPrefix: "/api"}},
		Transport: transport,
		Logger:    logger,
	})
	if err != nil {
		return "", err
	}
	return p.serve(ctx, logger, gw)
}

// passwordGrant obtains the bearer token of the gateway-bearer scenario from
// the real authorization server.
func passwordGrant(ctx context.Context, tokenURL, clientSecret, userPassword string) (string, error) {
	tc := oauth.TokenClient{TokenURL: tokenURL, ClientID: benchClientID, ClientSecret: clientSecret,
		HTTPClient: &http.Client{Timeout: requestTimeout}}
	resp, err := tc.Token(ctx, url.Values{"grant_type": {oauth.GrantPassword},
		"username": {benchUser}, "password": {userPassword}})
	if err != nil {
		return "", fmt.Errorf("password grant for %s: %w", benchUser, err)
	}
	return resp.AccessToken, nil
}

// get is a targeter of GET u, with the Authorization header if not "".
func get(u, authorization string) vegeta.Targeter {
	t := vegeta.Target{Method: http.MethodGet, URL: u}
	if authorization != "" {
		t.Header = http.Header{"Authorization": {authorization}}
	}
	return vegeta.NewStaticTargeter(t)
}

// serve serves h on a fresh loopback port, with the timeouts of every
// Gatehouse listener, until the parts close; it returns the base URL.
func (p *parts) serve(ctx context.Context, logger *slog.Logger, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := serve.NewServer(h, logger)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := serve.Run(ctx, srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve", "addr", ln.Addr(), "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops every part and waits for them.
func (p *parts) Close() error {
	p.cancel()
	p.wg.Wait()
	var err error
	for _, st := range append(p.stacks, p.stack) {
		if st != nil {
			err = errors.Join(err, st.Close())
		}
	}
	if p.closeDB != nil {
		err = errors.Join(err, p.closeDB())
	}
	return err
}
