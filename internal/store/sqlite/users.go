package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const userColumns = `id, username, password_hash, roles, disabled, tokens_not_before, created_at, updated_at`

// CreateUser inserts u; store.ErrAlreadyExists if its username or ID is taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, encodeList(u.Roles), u.Disabled, nullMicros(u.TokensNotBefore),
		micros(u.CreatedAt), micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, dbError(err))
	}
	return nil
}

// GetUser returns the user named username, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", username, dbError(err))
	}
	return u, nil
}

// GetUserByID returns the user with that ID, or store.ErrNotFound.
func (s *Store) GetUserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("get user by id %q: %w", id, dbError(err))
	}
	return u, nil
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var us []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// UpdateUser applies update to the user named username and stores the result,
// keeping its ID and Username, in one transaction. If update returns an error,
// nothing is written and UpdateUser returns that error unchanged.
func (s *Store) UpdateUser(ctx context.Context, username string, update func(*store.User) error) (store.User, error) {
	var u store.User
	var updateErr error
	err := s.inTx(ctx, func(tx *txn) error {
		old, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
		if err != nil {
			return dbError(err)
		}
		u = old
		if updateErr = update(&u); updateErr != nil {
			return updateErr
		}
		u.ID, u.Username = old.ID, old.Username
		u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users
			SET password_hash = ?, roles = ?, disabled = ?, tokens_not_before = ?, created_at = ?, updated_at = ?
			WHERE id = ? RETURNING `+userColumns,
			u.PasswordHash, encodeList(u.Roles), u.Disabled, nullMicros(u.TokensNotBefore), micros(u.CreatedAt),
			micros(u.UpdatedAt), u.ID))
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
func scanUser(row scanner) (store.User, error) {
	var (
		u                store.User
		roles            string
		notBefore        sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &roles, &u.Disabled, &notBefore, &created, &updated); err != nil {
		return store.User{}, err
	}
	var err error
	if u.Roles, err = decodeList(roles); err != nil {
		return store.User{}, fmt.Errorf("decode roles: %w", err)
	}
	u.TokensNotBefore = fromNullMicros(notBefore)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, nil
}
