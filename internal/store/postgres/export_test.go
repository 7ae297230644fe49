package postgres

import "github.com/jackc/pgx/v5"

// StatementCache reports how s's pool runs queries, for the tests.
func StatementCache(s *Store) (pgx.QueryExecMode, int) {
	cfg := s.pool.Config().ConnConfig
	return cfg.DefaultQueryExecMode, cfg.StatementCacheCapacity
}
