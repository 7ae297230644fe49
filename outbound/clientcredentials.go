package outbound

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// ClientCredentials is a TokenSource for a service acting as itself: it
// gets tokens with the client_credentials grant (RFC 6749 §4.4), caches the
// current one and fetches the next shortly before it expires. Concurrent
// callers share one fetch. Set the fields before first use.
//
// With Certificate set, it asks for certificate-bound tokens (RFC 8705 §3):
// the request goes over mutual TLS presenting the service's certificate,
// and the token is good only on connections that present that certificate
// too. A renewal changes the certificate, so the next Token call after one
// fetches a token bound to the new certificate.
type ClientCredentials struct {
	// TokenURL is the authorization server's token endpoint. Required.
	// With Certificate, the mutual-TLS one: "token_endpoint" of
	// "mtls_endpoint_aliases" in the server's discovery document.
	TokenURL string
	// ClientID and ClientSecret of this service.
	ClientID, ClientSecret string
	// AuthMethod is how the service authenticates: "client_secret_basic"
	// (if empty), "client_secret_post", or "tls_client_auth" (RFC 8705
	// §2.1), where Certificate authenticates it and ClientSecret is empty.
	AuthMethod string
	// Certificate is the service's certificate source, such as a
	// pki.RotatingSource. If set, tokens are bound to its certificate. If
	// nil, tokens are bearer tokens.
	Certificate x509svid.Source
	// Scopes to request; if empty, the client's defaults.
	Scopes []string
	// EarlyRefresh: a token is replaced this long before it expires. If
	// zero, 30s.
	EarlyRefresh time.Duration
	// HTTPClient calls the token endpoint; if nil, a client with a 10s
	// timeout. With Certificate, it must present Certificate's certificate
	// (pki.ClientConfig(src, bundle, authorizer) as its transport's
	// TLSClientConfig does); if nil, a client that presents it and
	// verifies the server's certificate against the system's roots. Give it
	// a transport of its own: idle connections are closed when the
	// certificate changes, so that the next request presents the new one.
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time

	mu         sync.Mutex
	token      string
	expiry     time.Time
	thumbprint string // of the certificate the token is bound to
	group      singleflight.Group
	hc         *http.Client // HTTPClient, or the default one made once
}

// Token returns a valid token, fetching one if the cached token is missing,
// about to expire, or bound to a certificate Certificate no longer holds.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	now := c.now()
	thumbprint, err := c.currentThumbprint()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	token, expiry, bound := c.token, c.expiry, c.thumbprint
	c.mu.Unlock()
	if token != "" && now.Before(expiry.Add(-c.early())) && bound == thumbprint {
		return token, nil
	}
	v, err, _ := c.group.Do("token", func() (any, error) { return c.fetch(context.WithoutCancel(ctx), thumbprint) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// currentThumbprint is the x5t#S256 of Certificate's certificate; "" when
// there is no Certificate.
func (c *ClientCredentials) currentThumbprint() (string, error) {
	if c.Certificate == nil {
		return "", nil
	}
	svid, err := c.Certificate.GetX509SVID()
	if err != nil {
		return "", err
	}
	if svid == nil || len(svid.Certificates) == 0 {
		return "", errors.New("outbound: the certificate source has no certificate")
	}
	return jose.CertificateThumbprint(svid.Certificates[0].Raw), nil
}

// fetch gets a token bound to the certificate with thumbprint (if any).
func (c *ClientCredentials) fetch(ctx context.Context, thumbprint string) (string, error) {
	hc := c.httpClient()
	c.mu.Lock()
	changed := c.token != "" && c.thumbprint != thumbprint
	c.mu.Unlock()
	if changed {
		// Idle connections were opened with the old certificate; a token
		// requested over one of them would be bound to it.
		hc.CloseIdleConnections()
	}
	params := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	if len(c.Scopes) > 0 {
		params.Set("scope", strings.Join(c.Scopes, " "))
	}
	issued := c.now()
	tc := &oauth.TokenClient{TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		AuthMethod: c.AuthMethod, HTTPClient: hc}
	resp, err := tc.Token(ctx, params)
	if err != nil {
		return "", err
	}
	expiry := resp.Expiry(issued)
	if expiry.IsZero() {
		expiry = issued.Add(time.Minute) // the server did not say: assume a short life
	}
	c.mu.Lock()
	c.token, c.expiry, c.thumbprint = resp.AccessToken, expiry, thumbprint
	c.mu.Unlock()
	return resp.AccessToken, nil
}

// httpClient is HTTPClient, or the default client, made once.
func (c *ClientCredentials) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second}
		if c.Certificate != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = tlsconfig.MTLSWebClientConfig(c.Certificate, nil)
			c.hc.Transport = t
		}
	}
	return c.hc
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
