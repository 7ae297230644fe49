package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const clientColumns = `id, secret_hash, public, grants, scopes, redirect_uris, audience,
	access_token_format, auth_method, jwks, access_token_ttl, refresh_token_ttl, refresh_absolute_ttl,
	exchange_audiences, trusted_proxy, certificate_bound, disabled, disabled_at, created_at, updated_at,
	post_logout_redirect_uris`

// CreateClient inserts c; store.ErrAlreadyExists if its ID is taken.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SecretHash, c.Public, encodeList(c.Grants), encodeList(c.Scopes),
		encodeList(c.RedirectURIs), encodeList(c.Audience), c.AccessTokenFormat,
		c.AuthMethod, nullBlob(c.JWKS), int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), int64(c.RefreshAbsoluteTTL),
		encodeList(c.ExchangeAudiences), c.TrustedProxy, c.CertificateBound, c.Disabled, nullMicros(c.DisabledAt), micros(c.CreatedAt), micros(c.UpdatedAt),
		encodeList(c.PostLogoutRedirectURIs))
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, dbError(err))
	}
	return nil
}

// GetClient returns the client with that ID, or store.ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(s.read.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return store.Client{}, fmt.Errorf("get client %q: %w", id, dbError(err))
	}
	return c, nil
}

// ListClients returns every client ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var cs []store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return cs, nil
}

// UpdateClient applies update to the client with that ID and stores the
// result, keeping its ID, in one transaction. If update returns an error,
// nothing is written and UpdateClient returns that error unchanged.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*store.Client) error) (store.Client, error) {
	var c store.Client
	var updateErr error
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if c, err = scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id)); err != nil {
			return dbError(err)
		}
		if updateErr = update(&c); updateErr != nil {
			return updateErr
		}
		c.ID = id
		c, err = scanClient(tx.QueryRowContext(ctx, `UPDATE clients
			SET secret_hash = ?, public = ?, grants = ?, scopes = ?, redirect_uris = ?, audience = ?,
				access_token_format = ?, auth_method = ?, jwks = ?, access_token_ttl = ?, refresh_token_ttl = ?,
				refresh_absolute_ttl = ?, exchange_audiences = ?, trusted_proxy = ?, certificate_bound = ?, disabled = ?,
				disabled_at = ?, created_at = ?, updated_at = ?, post_logout_redirect_uris = ?
			WHERE id = ? RETURNING `+clientColumns,
			c.SecretHash, c.Public, encodeList(c.Grants), encodeList(c.Scopes),
			encodeList(c.RedirectURIs), encodeList(c.Audience), c.AccessTokenFormat,
			c.AuthMethod, nullBlob(c.JWKS), int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), int64(c.RefreshAbsoluteTTL),
			encodeList(c.ExchangeAudiences), c.TrustedProxy, c.CertificateBound, c.Disabled, nullMicros(c.DisabledAt), micros(c.CreatedAt),
			micros(c.UpdatedAt), encodeList(c.PostLogoutRedirectURIs), id))
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
func scanClient(row scanner) (store.Client, error) {
	var (
		c                                                         store.Client
		grants, scopes, redirectURIs, audience, exchangeAudiences string
		postLogoutRedirectURIs                                    string
		jwks                                                      sql.Null[[]byte]
		accessTTL, refreshTTL, refreshAbsoluteTTL                 int64
		created, updated                                          int64
		disabledAt                                                sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.SecretHash, &c.Public, &grants, &scopes, &redirectURIs, &audience,
		&c.AccessTokenFormat, &c.AuthMethod, &jwks, &accessTTL, &refreshTTL, &refreshAbsoluteTTL,
		&exchangeAudiences, &c.TrustedProxy, &c.CertificateBound, &c.Disabled, &disabledAt, &created, &updated,
		&postLogoutRedirectURIs)
	if err != nil {
		return store.Client{}, err
	}
	lists := []struct {
		dst *[]string
		src string
	}{
		{&c.Grants, grants}, {&c.Scopes, scopes}, {&c.RedirectURIs, redirectURIs}, {&c.Audience, audience},
		{&c.ExchangeAudiences, exchangeAudiences}, {&c.PostLogoutRedirectURIs, postLogoutRedirectURIs},
	}
	for _, l := range lists {
		if *l.dst, err = decodeList(l.src); err != nil {
			return store.Client{}, fmt.Errorf("decode client lists: %w", err)
		}
	}
	c.JWKS = fromNullBlob(jwks)
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL), time.Duration(refreshTTL)
	c.RefreshAbsoluteTTL = time.Duration(refreshAbsoluteTTL)
	c.DisabledAt = fromNullMicros(disabledAt)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}
