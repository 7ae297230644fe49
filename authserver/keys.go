package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Signing keys and their rotation.
//
// A key is published in the JWKS from the moment it is stored, and signs
// from its ActiveAt, which a rotation sets KeyPublishDelay ahead, so every
// verifier has fetched it before the first token it signs. The newest key
// whose ActiveAt has passed signs; an older key stops signing when a newer
// one activates (its RetiredAt), and stays published until every token it
// signed has expired (its ExpiresAt: RetiredAt plus the longest token
// lifetime plus retireLeeway). Each server reloads the keys every
// KeyReloadInterval, so a rotation made by the CLI or by another replica
// takes effect everywhere without a restart; choosing the signer by the
// clock, not by the last reload, keeps replicas from signing with a retired
// key when the new one activates between two reloads.
//
// Revoking a key (Admin.RevokeKey) sets its RetiredAt and ExpiresAt to the
// moment of revocation: it stops signing and leaves the JWKS at once, and
// a secevent.KeyRetired event tells receivers to stop trusting its tokens.
// Retirement by rotation emits no event: those tokens stay trusted.

// signingKeys holds the stored keys that are still published. It is safe
// for concurrent use.
type signingKeys struct {
	store   store.Store
	keyring *keyring.Keyring
	logger  *slog.Logger
	now     func() time.Time
	alg     string // of the first key, when the store has none that can sign
	// lifetime is the longest lifetime of a token the keys sign.
	lifetime func(ctx context.Context) (time.Duration, error)
	// retireLeeway is added to a retired key's lifetime: the reload interval
	// (a replica may sign with a key until it reloads) plus a minute for
	// clock skew between the server and verifiers.
	retireLeeway time.Duration

	reloadMu sync.Mutex // one reload at a time

	mu   sync.RWMutex
	keys []loadedKey // ordered by ActiveAt
}

type loadedKey struct {
	meta    store.SigningKey
	public  jose.PublicKey
	private *jose.PrivateKey // nil once the key can no longer sign
}

// canSign reports whether k may sign at now.
func canSign(k store.SigningKey, now time.Time) bool {
	return !k.ActiveAt.After(now) &&
		(k.RetiredAt == nil || now.Before(*k.RetiredAt)) &&
		(k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// inJWKS reports whether k is in the JWKS at now.
func inJWKS(k store.SigningKey, now time.Time) bool {
	return k.ExpiresAt == nil || now.Before(*k.ExpiresAt)
}

// revokedBeforeActive reports whether k was revoked (Admin.RevokeKey)
// before it ever signed: it supersedes no key.
func revokedBeforeActive(k store.SigningKey) bool {
	return k.ExpiresAt != nil && !k.ExpiresAt.After(k.ActiveAt)
}

// reload reads the stored keys, creates a key when none can sign, retires
// keys that a newer key supersedes, and swaps in the keys still published.
func (ks *signingKeys) reload(ctx context.Context) error {
	ks.reloadMu.Lock()
	defer ks.reloadMu.Unlock()
	stored, err := ks.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := ks.now()
	if !slices.ContainsFunc(stored, func(k store.SigningKey) bool { return canSign(k, now) }) {
		k, err := addSigningKey(ctx, ks.store, ks.keyring, ks.alg, now, now)
		if err != nil {
			return err
		}
		ks.logger.InfoContext(ctx, "signing key created", "audit", true, "kid", k.ID, "alg", k.Algorithm)
		stored = append(stored, k)
	}
	slices.SortStableFunc(stored, func(a, b store.SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	if err := ks.retireSuperseded(ctx, stored); err != nil {
		return err
	}
	loaded, err := ks.load(stored, now)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	ks.keys = loaded
	ks.mu.Unlock()
	return nil
}

// retireSuperseded sets RetiredAt and ExpiresAt on every key (of stored,
// ordered by ActiveAt) that a later-activating key supersedes. Replicas may
// race to do it; each writes the same times for the same configuration.
func (ks *signingKeys) retireSuperseded(ctx context.Context, stored []store.SigningKey) error {
	var lifetime time.Duration
	for i := range stored {
		k := &stored[i]
		if k.RetiredAt != nil {
			continue
		}
		j := slices.IndexFunc(stored[i+1:], func(n store.SigningKey) bool {
			return n.ActiveAt.After(k.ActiveAt) && !revokedBeforeActive(n)
		})
		if j < 0 {
			continue
		}
		if lifetime == 0 {
			var err error
			if lifetime, err = ks.lifetime(ctx); err != nil {
				return fmt.Errorf("retire signing key %q: %w", k.ID, err)
			}
		}
		retired := stored[i+1+j].ActiveAt
		updated, err := ks.store.UpdateSigningKey(ctx, k.ID, func(sk *store.SigningKey) error {
			if sk.RetiredAt == nil {
				sk.RetiredAt = &retired
			}
			if sk.ExpiresAt == nil { // an earlier one, set by hand, stands
				e := sk.RetiredAt.Add(lifetime + ks.retireLeeway)
				sk.ExpiresAt = &e
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("retire signing key %q: %w", k.ID, err)
		}
		ks.logger.InfoContext(ctx, "signing key retired", "audit", true, "kid", k.ID,
			"retired_at", *updated.RetiredAt, "expires_at", *updated.ExpiresAt)
		*k = updated
	}
	return nil
}

// load parses the keys published at now, reusing the private keys already
// opened.
func (ks *signingKeys) load(stored []store.SigningKey, now time.Time) ([]loadedKey, error) {
	ks.mu.RLock()
	opened := make(map[string]*jose.PrivateKey, len(ks.keys))
	for _, k := range ks.keys {
		opened[k.meta.ID] = k.private
	}
	ks.mu.RUnlock()
	var out []loadedKey
	for _, k := range stored {
		if !inJWKS(k, now) {
			continue
		}
		pub, err := jose.ParsePublicKey(k.PublicJWK)
		if err != nil {
			return nil, fmt.Errorf("load signing key %q: %w", k.ID, err)
		}
		lk := loadedKey{meta: k, public: pub}
		if k.RetiredAt == nil || now.Before(*k.RetiredAt) {
			if lk.private = opened[k.ID]; lk.private == nil {
				if lk.private, err = openSigningKey(ks.keyring, k); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, lk)
	}
	return out, nil
}

func openSigningKey(kr *keyring.Keyring, k store.SigningKey) (*jose.PrivateKey, error) {
	priv, err := kr.Open(keyring.PurposeSigningKey, k.SealedPrivate, []byte(k.ID))
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", k.ID, err)
	}
	key, err := jose.ParsePrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", k.ID, err)
	}
	return key, nil
}

// addSigningKey generates a key for alg, seals its private half and stores
// it, published at once and signing from activeAt.
func addSigningKey(ctx context.Context, st store.Store, kr *keyring.Keyring, alg string, now, activeAt time.Time) (store.SigningKey, error) {
	key, err := jose.GenerateKey(alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	priv, err := key.MarshalPrivate()
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := kr.Seal(keyring.PurposeSigningKey, priv, []byte(key.ID()))
	if err != nil {
		return store.SigningKey{}, err
	}
	pub, err := key.Public().MarshalJSON()
	if err != nil {
		return store.SigningKey{}, err
	}
	k := store.SigningKey{
		ID: key.ID(), Algorithm: key.Algorithm(), PublicJWK: pub, SealedPrivate: sealed,
		CreatedAt: now.UTC(), ActiveAt: activeAt.UTC(),
	}
	if err := st.AddSigningKey(ctx, k); err != nil {
		return store.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	return k, nil
}

// signer returns the key to sign with now: the newest key that may sign.
// If this replica has not yet loaded the key that replaced its newest one,
// that key keeps signing until the next reload; retireLeeway covers it.
func (ks *signingKeys) signer() *jose.PrivateKey {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var fallback *jose.PrivateKey
	for i := len(ks.keys) - 1; i >= 0; i-- {
		k := ks.keys[i]
		if k.private == nil {
			continue
		}
		if canSign(k.meta, now) {
			return k.private
		}
		if fallback == nil && !k.meta.ActiveAt.After(now) {
			fallback = k.private
		}
	}
	if fallback == nil {
		// Unreachable after a successful reload, which leaves a key that can
		// sign; the oldest loaded key beats a nil one.
		for _, k := range ks.keys {
			if k.private != nil {
				return k.private
			}
		}
	}
	return fallback
}

// published returns the JWKS at now: every key loaded and not expired.
func (ks *signingKeys) published() *jose.KeySet {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	keys := make([]jose.PublicKey, 0, len(ks.keys))
	for _, k := range ks.keys {
		if inJWKS(k.meta, now) {
			keys = append(keys, k.public)
		}
	}
	return jose.NewKeySet(keys...)
}

// algorithms returns the algorithms of the published keys, for discovery.
func (ks *signingKeys) algorithms() []string {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var algs []string
	for _, k := range ks.keys {
		if inJWKS(k.meta, now) && !slices.Contains(algs, k.meta.Algorithm) {
			algs = append(algs, k.meta.Algorithm)
		}
	}
	return algs
}

// longestTokenLifetime is the longest lifetime of a token the server signs:
// the default access-token lifetime or a client's own, if longer.
func (s *Server) longestTokenLifetime(ctx context.Context) (time.Duration, error) {
	longest := s.cfg.AccessTokenTTL
	clients, err := s.cfg.Store.ListClients(ctx)
	if err != nil {
		return 0, err
	}
	for _, c := range clients {
		longest = max(longest, c.AccessTokenTTL)
	}
	return longest, nil
}
