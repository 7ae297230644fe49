package authserver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// signingKeys holds the keys loaded from the store: the one that signs now
// and every public key still published.
type signingKeys struct {
	mu      sync.RWMutex
	current *jose.PrivateKey
	jwks    *jose.KeySet
}

// loadSigningKeys reads the stored keys, creating the first one when the
// store has no key that can sign.
func loadSigningKeys(ctx context.Context, cfg Config) (*signingKeys, error) {
	stored, err := cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	now := cfg.Now()
	if !slices.ContainsFunc(stored, func(k store.SigningKey) bool { return canSign(k, now) }) {
		k, err := createSigningKey(ctx, cfg, now)
		if err != nil {
			return nil, err
		}
		stored = append(stored, k)
	}
	sk := &signingKeys{}
	var public []jose.PublicKey
	var newest *store.SigningKey
	for i, k := range stored {
		if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
			continue
		}
		pub, err := jose.ParsePublicKey(k.PublicJWK)
		if err != nil {
			return nil, fmt.Errorf("load signing key %q: %w", k.ID, err)
		}
		public = append(public, pub)
		if canSign(k, now) && (newest == nil || k.ActiveAt.After(newest.ActiveAt)) {
			newest = &stored[i]
		}
	}
	priv, err := cfg.Keyring.Open(keyring.PurposeSigningKey, newest.SealedPrivate, []byte(newest.ID))
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", newest.ID, err)
	}
	if sk.current, err = jose.ParsePrivateKey(priv); err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", newest.ID, err)
	}
	sk.jwks = jose.NewKeySet(public...)
	return sk, nil
}

func canSign(k store.SigningKey, now time.Time) bool {
	return k.RetiredAt == nil && !k.ActiveAt.After(now) && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// createSigningKey generates a key, seals its private half and stores it.
func createSigningKey(ctx context.Context, cfg Config, now time.Time) (store.SigningKey, error) {
	key, err := jose.GenerateKey(cfg.SigningAlgorithm)
	if err != nil {
		return store.SigningKey{}, err
	}
	priv, err := key.MarshalPrivate()
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := cfg.Keyring.Seal(keyring.PurposeSigningKey, priv, []byte(key.ID()))
	if err != nil {
		return store.SigningKey{}, err
	}
	pub, err := key.Public().MarshalJSON()
	if err != nil {
		return store.SigningKey{}, err
	}
	k := store.SigningKey{
		ID: key.ID(), Algorithm: key.Algorithm(), PublicJWK: pub, SealedPrivate: sealed,
		CreatedAt: now.UTC(), ActiveAt: now.UTC(),
	}
	if err := cfg.Store.AddSigningKey(ctx, k); err != nil {
		return store.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	cfg.Logger.InfoContext(ctx, "signing key created", "kid", k.ID, "alg", k.Algorithm)
	return k, nil
}

func (k *signingKeys) signer() *jose.PrivateKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

func (k *signingKeys) published() *jose.KeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}
