package outbound

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// ClientCredentials is a TokenSource for a service acting as itself: it
// gets tokens with the client_credentials grant (RFC 6749 §4.4), caches the
// current one and fetches the next shortly before it expires. Concurrent
// callers share one fetch. Set the fields before first use.
type ClientCredentials struct {
	// TokenURL is the authorization server's token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret of this service (client_secret_basic).
	ClientID, ClientSecret string
	// Scopes to request; if empty, the client's defaults.
	Scopes []string
	// EarlyRefresh: a token is replaced this long before it expires. If
	// zero, 30s.
	EarlyRefresh time.Duration
	// HTTPClient calls the token endpoint; if nil, a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
	group  singleflight.Group
}

// Token returns a valid token, fetching one if the cached token is missing
// or about to expire.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	now := c.now()
	c.mu.Lock()
	token, expiry := c.token, c.expiry
	c.mu.Unlock()
	if token != "" && now.Before(expiry.Add(-c.early())) {
		return token, nil
	}
	v, err, _ := c.group.Do("token", func() (any, error) { return c.fetch(context.WithoutCancel(ctx)) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *ClientCredentials) fetch(ctx context.Context) (string, error) {
	params := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	if len(c.Scopes) > 0 {
		params.Set("scope", strings.Join(c.Scopes, " "))
	}
	issued := c.now()
	resp, err := tokenClient(c.TokenURL, c.ClientID, c.ClientSecret, c.HTTPClient).Token(ctx, params)
	if err != nil {
		return "", err
	}
	expiry := resp.Expiry(issued)
	if expiry.IsZero() {
		expiry = issued.Add(time.Minute) // the server did not say: assume a short life
	}
	c.mu.Lock()
	c.token, c.expiry = resp.AccessToken, expiry
	c.mu.Unlock()
	return resp.AccessToken, nil
}

func (c *ClientCredentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *ClientCredentials) early() time.Duration {
	if c.EarlyRefresh > 0 {
		return c.EarlyRefresh
	}
	return 30 * time.Second
}

func tokenClient(tokenURL, id, secret string, hc *http.Client) *oauth.TokenClient {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &oauth.TokenClient{TokenURL: tokenURL, ClientID: id, ClientSecret: secret, HTTPClient: hc}
}
