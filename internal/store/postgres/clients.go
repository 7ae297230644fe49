package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const clientColumns = `id, secret_hash, public, grants, scopes, redirect_uris, audience,
	access_token_format, auth_method, jwks, access_token_ttl, refresh_token_ttl, refresh_absolute_ttl,
	exchange_audiences, trusted_proxy, certificate_bound, disabled, disabled_at, created_at, updated_at,
	post_logout_redirect_uris`

// CreateClient inserts c; store.ErrAlreadyExists if its ID is taken.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		c.ID, c.SecretHash, c.Public, list(c.Grants), list(c.Scopes), list(c.RedirectURIs), list(c.Audience),
		c.AccessTokenFormat, c.AuthMethod, c.JWKS, int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
		int64(c.RefreshAbsoluteTTL), list(c.ExchangeAudiences), c.TrustedProxy, c.CertificateBound, c.Disabled, c.DisabledAt,
		c.CreatedAt, c.UpdatedAt, list(c.PostLogoutRedirectURIs))
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, dbError(err))
	}
	return nil
}

// GetClient returns the client with that ID, or store.ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return store.Client{}, fmt.Errorf("get client %q: %w", id, dbError(err))
	}
	return c, nil
}

// ListClients returns every client ordered by ID (byte order, whatever the
// database's collation).
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Client, error) { return scanClient(row) })
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return cs, nil
}

// UpdateClient applies update to the client with that ID and stores the
// result, keeping its ID, in one transaction that holds the client's row
// lock. If update returns an error, nothing is written and UpdateClient
// returns that error unchanged.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*store.Client) error) (store.Client, error) {
	var c store.Client
	var updateErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = scanClient(tx.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return dbError(err)
		}
		if updateErr = update(&c); updateErr != nil {
			return updateErr
		}
		c, err = scanClient(tx.QueryRow(ctx, `UPDATE clients
			SET secret_hash = $2, public = $3, grants = $4, scopes = $5, redirect_uris = $6, audience = $7,
				access_token_format = $8, auth_method = $9, jwks = $10, access_token_ttl = $11,
				refresh_token_ttl = $12, refresh_absolute_ttl = $13, exchange_audiences = $14,
				trusted_proxy = $15, disabled = $16, disabled_at = $17, created_at = $18, updated_at = $19,
				certificate_bound = $20, post_logout_redirect_uris = $21
			WHERE id = $1 RETURNING `+clientColumns,
			id, c.SecretHash, c.Public, list(c.Grants), list(c.Scopes), list(c.RedirectURIs), list(c.Audience),
			c.AccessTokenFormat, c.AuthMethod, c.JWKS, int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
			int64(c.RefreshAbsoluteTTL), list(c.ExchangeAudiences), c.TrustedProxy, c.Disabled, c.DisabledAt,
			c.CreatedAt, c.UpdatedAt, c.CertificateBound, list(c.PostLogoutRedirectURIs)))
		return err
	})
	switch {
	case updateErr != nil:
		return store.Client{}, updateErr
	case err != nil:
		return store.Client{}, fmt.Errorf("update client %q: %w", id, err)
	}
	return c, nil
}

// scanClient reads a row of clientColumns.
func scanClient(row pgx.Row) (store.Client, error) {
	var (
		c                                         store.Client
		accessTTL, refreshTTL, refreshAbsoluteTTL int64
	)
	err := row.Scan(&c.ID, &c.SecretHash, &c.Public, &c.Grants, &c.Scopes, &c.RedirectURIs, &c.Audience,
		&c.AccessTokenFormat, &c.AuthMethod, &c.JWKS, &accessTTL, &refreshTTL, &refreshAbsoluteTTL,
		&c.ExchangeAudiences, &c.TrustedProxy, &c.CertificateBound, &c.Disabled, &c.DisabledAt, &c.CreatedAt, &c.UpdatedAt,
		&c.PostLogoutRedirectURIs)
	if err != nil {
		return store.Client{}, err
	}
	c.Grants, c.Scopes, c.RedirectURIs, c.Audience = fromList(c.Grants), fromList(c.Scopes), fromList(c.RedirectURIs), fromList(c.Audience)
	c.ExchangeAudiences, c.PostLogoutRedirectURIs = fromList(c.ExchangeAudiences), fromList(c.PostLogoutRedirectURIs)
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL), time.Duration(refreshTTL)
	c.RefreshAbsoluteTTL = time.Duration(refreshAbsoluteTTL)
	c.DisabledAt = utc(c.DisabledAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}
