package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const userColumns = `id, username, password_hash, roles, disabled, tokens_not_before, created_at, updated_at`

// CreateUser inserts u; store.ErrAlreadyExists if its username or ID is taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Username, u.PasswordHash, list(u.Roles), u.Disabled, u.TokensNotBefore, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, dbError(err))
	}
	return nil
}

// GetUser returns the user named username, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", username, dbError(err))
	}
	return u, nil
}

// GetUserByID returns the user with that ID, or store.ErrNotFound.
func (s *Store) GetUserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("get user by id %q: %w", id, dbError(err))
	}
	return u, nil
}

// ListUsers returns every user ordered by username (byte order, whatever the
// database's collation).
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// UpdateUser applies update to the user named username and stores the result,
// keeping its ID and Username, in one transaction that holds the user's row
// lock. If update returns an error, nothing is written and UpdateUser returns
// that error unchanged.
func (s *Store) UpdateUser(ctx context.Context, username string, update func(*store.User) error) (store.User, error) {
	var u store.User
	var updateErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1 FOR UPDATE`, username))
		if err != nil {
			return dbError(err)
		}
		u = old
		if updateErr = update(&u); updateErr != nil {
			return updateErr
		}
		u.ID, u.Username = old.ID, old.Username
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users
			SET password_hash = $2, roles = $3, disabled = $4, tokens_not_before = $5, created_at = $6, updated_at = $7
			WHERE id = $1 RETURNING `+userColumns,
			u.ID, u.PasswordHash, list(u.Roles), u.Disabled, u.TokensNotBefore, u.CreatedAt, u.UpdatedAt))
		return err
	})
	switch {
	case updateErr != nil:
		return store.User{}, updateErr
	case err != nil:
		return store.User{}, fmt.Errorf("update user %q: %w", username, err)
	}
	return u, nil
}

// scanUser reads a row of userColumns.
func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Roles, &u.Disabled, &u.TokensNotBefore, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return store.User{}, err
	}
	u.Roles = fromList(u.Roles)
	u.TokensNotBefore = utc(u.TokensNotBefore)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}
