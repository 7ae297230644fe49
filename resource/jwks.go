package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// ErrKeysUnavailable reports that no verification keys could be had: the
// JWKS was never fetched and fetching it now failed.
var ErrKeysUnavailable = errors.New("resource: verification keys unavailable")

// remoteKeys is a JWKS fetched from the issuer and cached. It refetches when
// a token names an unknown kid (at most once per minRefetch), refreshes in
// the background when older than maxAge, folds concurrent fetches into one,
// and keeps serving its cached keys while the issuer is unreachable.
type remoteKeys struct {
	issuer     string
	jwksURL    string // if empty, found by discovery
	client     *http.Client
	now        func() time.Time
	minRefetch time.Duration
	maxAge     time.Duration

	mu        sync.RWMutex
	set       *jose.KeySet
	fetchedAt time.Time
	tried     time.Time // last fetch attempt, successful or not
	group     singleflight.Group
}

// VerificationKeys implements jose.Keys.
func (r *remoteKeys) VerificationKeys(ctx context.Context, kid string) ([]jose.PublicKey, error) {
	r.mu.RLock()
	set, fetchedAt, tried := r.set, r.fetchedAt, r.tried
	r.mu.RUnlock()
	now := r.now()
	if set != nil {
		if keys := set.Lookup(kid); len(keys) > 0 {
			if now.Sub(fetchedAt) > r.maxAge && now.Sub(tried) > r.minRefetch {
				go r.fetch(context.WithoutCancel(ctx))
			}
			return keys, nil
		}
		if now.Sub(tried) < r.minRefetch {
			return nil, nil // unknown kid, and we fetched a moment ago
		}
	}
	set, err := r.fetch(ctx)
	if err != nil {
		if set == nil {
			return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
		}
		return set.Lookup(kid), nil // serve from cache while the issuer is down
	}
	return set.Lookup(kid), nil
}

// ready returns nil when a key set is cached, else the error of fetching
// one now.
func (r *remoteKeys) ready(ctx context.Context) error {
	r.mu.RLock()
	set := r.set
	r.mu.RUnlock()
	if set != nil {
		return nil
	}
	if _, err := r.fetch(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	return nil
}

// fetchTimeout bounds a fetch, which no caller's context does.
const fetchTimeout = 30 * time.Second

// fetch refreshes the key set, folding concurrent calls into one. It
// returns the newest set it has, even with an error. The shared fetch
// outlives the caller that started it; each caller waits for it only as
// long as its own ctx allows.
func (r *remoteKeys) fetch(ctx context.Context) (*jose.KeySet, error) {
	ch := r.group.DoChan("jwks", func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		set, err := r.download(dctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tried = r.now()
		if err != nil {
			return r.set, err
		}
		r.set, r.fetchedAt = set, r.tried
		return set, nil
	})
	select {
	case res := <-ch:
		set, _ := res.Val.(*jose.KeySet)
		return set, res.Err
	case <-ctx.Done():
		r.mu.RLock()
		defer r.mu.RUnlock()
		return r.set, ctx.Err()
	}
}

func (r *remoteKeys) download(ctx context.Context) (*jose.KeySet, error) {
	url := r.jwksURL
	if url == "" {
		var err error
		if url, err = discoverJWKS(ctx, r.client, r.issuer); err != nil {
			return nil, err
		}
	}
	body, err := get(ctx, r.client, url)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	set, err := jose.ParseKeySet(body)
	if err != nil {
		return nil, err
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("fetch jwks: %s has no usable keys", url)
	}
	return set, nil
}

// discoverJWKS reads jwks_uri from the issuer's OpenID Connect discovery
// document, falling back to RFC 8414 metadata, and checks the issuer matches.
func discoverJWKS(ctx context.Context, client *http.Client, issuer string) (string, error) {
	base := strings.TrimSuffix(issuer, "/")
	var lastErr error
	for _, url := range []string{base + "/.well-known/openid-configuration", base + "/.well-known/oauth-authorization-server"} {
		body, err := get(ctx, client, url)
		if err != nil {
			lastErr = err
			continue
		}
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &meta); err != nil {
			return "", fmt.Errorf("discovery %s: %w", url, err)
		}
		if meta.Issuer != issuer {
			return "", fmt.Errorf("discovery %s: issuer %q, want %q", url, meta.Issuer, issuer)
		}
		if meta.JWKSURI == "" {
			return "", fmt.Errorf("discovery %s: no jwks_uri", url)
		}
		return meta.JWKSURI, nil
	}
	return "", fmt.Errorf("discovery: %w", lastErr)
}

// maxDocument bounds a discovery document or JWKS.
const maxDocument = 1 << 20

func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxDocument))
}
