package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
)

// The authorization-server scenarios, each run on SQLite under its own name
// and, with -postgres, on PostgreSQL under the name plus pgSuffix.
var asScenarioNames = []string{"as-client-credentials-jwt", "as-client-credentials-opaque", "as-refresh", "as-introspect-jwt"}

// pgSuffix names the PostgreSQL variant of an authorization-server scenario.
const pgSuffix = "-pg"

// The seeded clients of the authorization-server scenarios, one per
// scenario, so that each is configured for exactly what it measures.
const (
	ccJWTClientID      = "bench-cc-jwt"
	ccOpaqueClientID   = "bench-cc-opaque"
	refreshClientID    = "bench-refresh"
	introspectClientID = "bench-introspect"
	refreshUser        = "bench-refresh-user"
)

// poolPasswordParams are the argon2id parameters of the authorization-server
// stacks: the refresh token pool is minted with password grants, and at the
// real cost (password.Default) minting would take longer than measuring. No
// scenario measures a password grant; its cost is reported on its own (see
// measureArgon2).
var poolPasswordParams = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// errPoolExhausted ends a refresh attack that used every minted token: a
// token is never presented twice, so the attack cannot go on. It shows as an
// error of the scenario.
var errPoolExhausted = errors.New("refresh token pool exhausted: raise -refresh-pool")

// asConfig configures startAS.
type asConfig struct {
	// DataDir holds the stack's master key and CA (and, without Store, its
	// SQLite database).
	DataDir string
	// Store is the PostgreSQL store; nil means SQLite in DataDir.
	Store store.Store
	// Suffix is appended to every scenario name ("" or pgSuffix).
	Suffix string
	// TokenTTL is the access token lifetime; it must outlast the run.
	TokenTTL time.Duration
	// RefreshPool is the number of refresh tokens to mint; 0 skips as-refresh.
	RefreshPool int
	// Minters is how many password grants run at once while minting.
	Minters int
	Logger  *slog.Logger
}

// asEndpoints are what the authorization-server scenarios talk to.
type asEndpoints struct {
	token, introspect string
	secrets           map[string]string // client ID → secret
}

// startAS starts a dev stack for the authorization-server scenarios and
// returns them. The stack has refresh rotation's grace window turned off, so
// a refresh token presented twice fails (and revokes its family) instead of
// being answered again: an error-free as-refresh run proves every request
// was a real rotation.
func startAS(ctx context.Context, cfg asConfig) (*devstack.Stack, []scenario, error) {
	seed, secrets := asSeed()
	st, err := devstack.Start(ctx, devstack.Options{
		DataDir: cfg.DataDir, Store: cfg.Store, Seed: seed, Logger: cfg.Logger,
		GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		AccessTokenTTL: cfg.TokenTTL, RefreshGrace: -1, PasswordParams: poolPasswordParams,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("start authorization server%s: %w", cfg.Suffix, err)
	}
	scs, err := asScenarios(ctx, st, secrets, cfg)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("authorization server%s: %w", cfg.Suffix, err)
	}
	return st, scs, nil
}

// asSeed is one user and one client per scenario, with fresh secrets.
func asSeed() (*config.Seed, map[string]string) {
	secrets := map[string]string{
		ccJWTClientID: rand.Text(), ccOpaqueClientID: rand.Text(), refreshClientID: rand.Text(),
		introspectClientID: rand.Text(), refreshUser: rand.Text(),
	}
	cc := []string{oauth.GrantClientCredentials}
	return &config.Seed{
		Users: []config.SeedUser{{Username: refreshUser, Password: secrets[refreshUser], Roles: []string{"consumer"}}},
		Clients: []config.SeedClient{
			{ID: ccJWTClientID, Secret: secrets[ccJWTClientID], Grants: cc},
			{ID: ccOpaqueClientID, Secret: secrets[ccOpaqueClientID], Grants: cc, AccessTokenFormat: store.FormatOpaque},
			{ID: refreshClientID, Secret: secrets[refreshClientID], Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}},
			{ID: introspectClientID, Secret: secrets[introspectClientID], Grants: cc},
		},
	}, secrets
}

// asScenarios builds the scenarios against st: it reads the endpoints from
// discovery, gets the JWT to introspect and mints the refresh token pool.
func asScenarios(ctx context.Context, st *devstack.Stack, secrets map[string]string, cfg asConfig) ([]scenario, error) {
	ep, err := discover(ctx, st.IssuerURL)
	if err != nil {
		return nil, err
	}
	ep.secrets = secrets
	tc := ep.tokenClient(ccJWTClientID)
	jwt, err := tc.Token(ctx, url.Values{"grant_type": {oauth.GrantClientCredentials}})
	if err != nil {
		return nil, fmt.Errorf("client_credentials for %s: %w", ccJWTClientID, err)
	}
	cc := url.Values{"grant_type": {oauth.GrantClientCredentials}}.Encode()
	scs := []scenario{
		{name: "as-client-credentials-jwt", next: vegeta.NewStaticTargeter(ep.post(ep.token, ccJWTClientID, cc))},
		{name: "as-client-credentials-opaque", next: vegeta.NewStaticTargeter(ep.post(ep.token, ccOpaqueClientID, cc))},
		{name: "as-introspect-jwt", next: vegeta.NewStaticTargeter(ep.post(ep.introspect, introspectClientID,
			url.Values{"token": {jwt.AccessToken}, "token_type_hint": {"access_token"}}.Encode()))},
	}
	if cfg.RefreshPool > 0 {
		pool, err := mintRefreshPool(ctx, ep, cfg.RefreshPool, cfg.Minters)
		if err != nil {
			return nil, err
		}
		scs = append(scs, scenario{name: "as-refresh", next: ep.refreshTargeter(pool)})
	}
	for i := range scs {
		scs[i].name += cfg.Suffix
	}
	return scs, nil
}

// discover reads the token and introspection endpoints from the server's
// discovery document, as a client would.
func discover(ctx context.Context, issuer string) (asEndpoints, error) {
	var ep asEndpoints
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return ep, err
	}
	resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		return ep, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Token      string `json:"token_endpoint"`
		Introspect string `json:"introspection_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return ep, fmt.Errorf("discovery: HTTP %d: %w", resp.StatusCode, err)
	}
	if doc.Token == "" || doc.Introspect == "" {
		return ep, errors.New("discovery names no token or introspection endpoint")
	}
	ep.token, ep.introspect = doc.Token, doc.Introspect
	return ep, nil
}

func (ep asEndpoints) tokenClient(clientID string) *oauth.TokenClient {
	return &oauth.TokenClient{TokenURL: ep.token, ClientID: clientID, ClientSecret: ep.secrets[clientID],
		HTTPClient: &http.Client{Timeout: requestTimeout}}
}

// post is a form POST to u, authenticated as clientID with
// client_secret_basic.
func (ep asEndpoints) post(u, clientID, form string) vegeta.Target {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(ep.secrets[clientID])) // RFC 6749 §2.3.1
	return vegeta.Target{Method: http.MethodPost, URL: u, Body: []byte(form), Header: http.Header{
		"Authorization": req.Header["Authorization"],
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Accept":        {"application/json"},
	}}
}

// mintRefreshPool makes n password grants, minters at a time, and returns
// their refresh tokens: each a session of its own, never used yet.
func mintRefreshPool(ctx context.Context, ep asEndpoints, n, minters int) ([]string, error) {
	pool := make([]string, n)
	tc := ep.tokenClient(refreshClientID)
	tc.HTTPClient.Transport = &http.Transport{MaxIdleConnsPerHost: minters}
	defer tc.HTTPClient.CloseIdleConnections()
	form := url.Values{"grant_type": {oauth.GrantPassword}, "username": {refreshUser}, "password": {ep.secrets[refreshUser]}}
	var next atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range minters {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				resp, err := tc.Token(ctx, form)
				if err != nil {
					return fmt.Errorf("mint refresh token %d of %d: %w", i+1, n, err)
				}
				if resp.RefreshToken == "" {
					return fmt.Errorf("mint refresh token %d of %d: the password grant returned none", i+1, n)
				}
				pool[i] = resp.RefreshToken
			}
			return nil
		})
	}
	return pool, g.Wait()
}

// refreshTargeter hands out each token of pool once, in a refresh_token
// grant, and fails with errPoolExhausted after the last. It is safe for
// concurrent use.
func (ep asEndpoints) refreshTargeter(pool []string) vegeta.Targeter {
	base := ep.post(ep.token, refreshClientID, "")
	var next atomic.Int64
	return func(t *vegeta.Target) error {
		i := next.Add(1) - 1
		if i >= int64(len(pool)) {
			return errPoolExhausted
		}
		*t = base
		t.Body = []byte("grant_type=refresh_token&refresh_token=" + url.QueryEscape(pool[i]))
		return nil
	}
}

// refreshPoolSize is how many refresh tokens as-refresh needs on one store:
// one per request of the checks, the warm-up and every round, at rate, or at
// assumedMaxRefreshRate in a closed loop; at most maxRefreshPool.
func refreshPoolSize(c measureConfig) int {
	rate := float64(c.Rate)
	if rate == 0 {
		rate = assumedMaxRefreshRate
	}
	window := c.Warmup + time.Duration(c.Rounds)*c.Duration
	n := checkRequests + int(rate*window.Seconds()*1.1) + 100
	return min(n, maxRefreshPool)
}

// Bounds of the refresh token pool. assumedMaxRefreshRate is well above
// what two cores reach on SQLite; a faster machine runs out (an error says
// so) and needs -refresh-pool.
const (
	assumedMaxRefreshRate = 1500
	maxRefreshPool        = 200_000
)

// pgSchema is a fresh PostgreSQL schema for one run of the harness.
type pgSchema struct {
	admin string // the DSN as given
	name  string
	dsn   string // the DSN with search_path set to the schema
}

// createSchema creates a schema of a random name in the database dsn names
// and returns it with a DSN whose search_path is that schema.
func createSchema(ctx context.Context, dsn string) (*pgSchema, error) {
	s := &pgSchema{admin: dsn, name: "gatehouse_bench_" + strings.ToLower(rand.Text())}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("-postgres: want a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	s.dsn = u.String()
	return s, s.exec(ctx, "CREATE SCHEMA "+s.name)
}

// Drop drops the schema and everything in it.
func (s *pgSchema) Drop(ctx context.Context) error {
	return s.exec(ctx, "DROP SCHEMA "+s.name+" CASCADE")
}

// exec runs sql on a connection of its own.
func (s *pgSchema) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// openPostgres creates a schema and opens a store in it; closing the
// returned function closes the store and drops the schema.
func openPostgres(ctx context.Context, dsn string) (store.Store, func() error, error) {
	schema, err := createSchema(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	st, err := postgres.Open(ctx, schema.dsn)
	if err != nil {
		return nil, nil, errors.Join(err, schema.Drop(context.WithoutCancel(ctx)))
	}
	var once sync.Once
	var closeErr error
	return st, func() error {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
			defer cancel()
			closeErr = errors.Join(st.Close(), schema.Drop(ctx))
		})
		return closeErr
	}, nil
}
