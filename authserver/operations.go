package authserver

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// defaultKeyPublishDelay is how long a rotated key is published before it
// signs: longer than the key reload interval (30s) plus the JWKS refresh of
// our verifiers (5m), so each has the key before it sees a token it signed.
const defaultKeyPublishDelay = 10 * time.Minute

// setOperationDefaults fills the defaults of the Config fields for
// operations: throttling, key rotation, garbage collection, metrics.
func (c *Config) setOperationDefaults() {
	c.LoginThrottle.setDefaults()
	setDuration(&c.KeyPublishDelay, defaultKeyPublishDelay)
	if c.KeyPublishDelay < 0 {
		c.KeyPublishDelay = 0
	}
	setDuration(&c.KeyReloadInterval, 30*time.Second)
	setDuration(&c.GCInterval, 10*time.Minute)
	setDuration(&c.EventRetention, 24*time.Hour)
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// setUpOperations loads the signing keys and builds the metrics and the
// admin service.
func (s *Server) setUpOperations(ctx context.Context) error {
	m, err := newMetrics(s.cfg.Registerer)
	if err != nil {
		return fmt.Errorf("authserver: register metrics: %w", err)
	}
	s.metrics = m
	s.handler = s.instrument(s.mux)
	s.keys = &signingKeys{
		store: s.cfg.Store, keyring: s.cfg.Keyring, logger: s.cfg.Logger, now: s.cfg.Now,
		alg: s.cfg.SigningAlgorithm, lifetime: s.longestTokenLifetime,
		retireLeeway: s.cfg.KeyReloadInterval + time.Minute,
	}
	if err := s.keys.reload(ctx); err != nil {
		return err
	}
	admin, err := NewAdmin(AdminConfig{Store: s.cfg.Store, Keyring: s.cfg.Keyring, PasswordParams: s.cfg.PasswordParams,
		SigningAlgorithm: s.cfg.SigningAlgorithm, KeyPublishDelay: s.cfg.KeyPublishDelay, Logger: s.cfg.Logger, Now: s.cfg.Now})
	if err != nil {
		return err
	}
	admin.afterKeyChange = s.keys.reload
	admin.afterClientChange = s.clients.invalidate
	admin.afterSessionRevoked = s.markSessionRevoked
	s.admin = admin
	return nil
}
