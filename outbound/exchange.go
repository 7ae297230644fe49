package outbound

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/expiring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// Token type URIs of RFC 8693 §3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// Exchange is a TokenSource that trades the caller's access token (from
// resource.Middleware's principal in the context) for one whose audience is
// Audience, with the token-exchange grant (RFC 8693). The issued token keeps
// the user's identity and names this service in its "act" claim. Results
// are cached per (caller token, audience) until EarlyRefresh before they
// expire; concurrent exchanges of one token share one request.
type Exchange struct {
	// TokenURL is the authorization server's token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret of this service (client_secret_basic).
	ClientID, ClientSecret string
	// Audience of the issued token: the service being called. Required.
	Audience string
	// Scopes to narrow the issued token to; if empty, the caller's.
	Scopes []string
	// EarlyRefresh: a cached token is not used this close to its expiry. If
	// zero, 10s.
	EarlyRefresh time.Duration
	// CacheSize bounds the cache. If zero, 10000.
	CacheSize int
	// HTTPClient calls the token endpoint; if nil, a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]exchanged
	group singleflight.Group
}

type exchanged struct {
	token  string
	expiry time.Time
}

// Token returns a token for Audience on behalf of the caller in ctx.
func (e *Exchange) Token(ctx context.Context) (string, error) {
	p := resource.FromContext(ctx)
	if p == nil || p.Token == "" {
		return "", ErrNoCaller
	}
	key := sha256.Sum256([]byte(p.Token))
	now := e.now()
	e.mu.RLock()
	hit, ok := e.cache[key]
	e.mu.RUnlock()
	if ok && now.Before(hit.expiry.Add(-e.early())) {
		return hit.token, nil
	}
	v, err, _ := e.group.Do(string(key[:]), func() (any, error) { return e.exchange(context.WithoutCancel(ctx), key, p.Token) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (e *Exchange) exchange(ctx context.Context, key [sha256.Size]byte, subject string) (string, error) {
	params := url.Values{
		"grant_type":           {oauth.GrantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {TokenTypeAccessToken},
		"requested_token_type": {TokenTypeAccessToken},
		"audience":             {e.Audience},
	}
	if len(e.Scopes) > 0 {
		params.Set("scope", strings.Join(e.Scopes, " "))
	}
	issued := e.now()
	resp, err := tokenClient(e.TokenURL, e.ClientID, e.ClientSecret, e.HTTPClient).Token(ctx, params)
	if err != nil {
		return "", err
	}
	expiry := resp.Expiry(issued)
	if expiry.IsZero() {
		return resp.AccessToken, nil // no lifetime given: do not cache
	}
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[[sha256.Size]byte]exchanged{}
	}
	if len(e.cache) >= e.size() {
		expiring.MakeRoom(e.cache, issued, func(x exchanged) time.Time { return x.expiry })
	}
	e.cache[key] = exchanged{token: resp.AccessToken, expiry: expiry}
	e.mu.Unlock()
	return resp.AccessToken, nil
}

func (e *Exchange) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Exchange) early() time.Duration {
	if e.EarlyRefresh > 0 {
		return e.EarlyRefresh
	}
	return 10 * time.Second
}

func (e *Exchange) size() int {
	if e.CacheSize > 0 {
		return e.CacheSize
	}
	return 10000
}
