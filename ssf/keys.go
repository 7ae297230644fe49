package ssf

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// jwksFromMetadata is the transmitter's key set as its configuration names
// it (jwks_uri, SSF 1.0 §7.1): the keys that sign its SETs, which need not
// be those of the issuer's access tokens. It is learned whenever the
// receiver reads the configuration, and read on first use if not yet
// known; the keys themselves are fetched and cached by
// resource.RemoteKeySet. It is safe for concurrent use.
type jwksFromMetadata struct {
	issuer string
	client *http.Client
	meta   func(context.Context) (transmitterMeta, error)

	mu   sync.Mutex
	uri  string
	keys jose.Keys // nil until the URI is known
}

// use points the key set at uri, or at the jwks_uri of the issuer's
// discovery document if uri is empty; a new URI starts a new cache.
func (k *jwksFromMetadata) use(uri string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil || uri != k.uri {
		k.uri, k.keys = uri, resource.RemoteKeySet(k.issuer, uri, k.client)
	}
}

// VerificationKeys implements jose.Keys.
func (k *jwksFromMetadata) VerificationKeys(ctx context.Context, kid string) ([]jose.PublicKey, error) {
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if keys == nil {
		if _, err := k.meta(ctx); err != nil { // which calls use
			return nil, fmt.Errorf("%w: %w", resource.ErrKeysUnavailable, err)
		}
		k.mu.Lock()
		keys = k.keys
		k.mu.Unlock()
	}
	return keys.VerificationKeys(ctx, kid)
}

var _ jose.Keys = (*jwksFromMetadata)(nil)
