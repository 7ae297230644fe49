package sqlite

import (
	"database/sql"
	"encoding/json"
	"time"
)

// scanner is the part of *sql.Row and *sql.Rows that reads one row.
type scanner interface {
	Scan(dest ...any) error
}

// micros encodes t as Unix microseconds, the precision PostgreSQL keeps too.
func micros(t time.Time) int64 {
	return t.UnixMicro()
}

// fromMicros decodes Unix microseconds to a UTC time.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// nullMicros encodes an optional time; nil becomes NULL.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

// fromNullMicros decodes an optional time; NULL becomes nil.
func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// encodeList encodes l as a JSON array; nil becomes [].
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// decodeList decodes a JSON array of strings; [] becomes nil.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// blob returns b, or an empty slice for nil, so that a NOT NULL BLOB column
// accepts it.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// fromBlob returns b, or nil for an empty blob.
func fromBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nullBlob encodes optional bytes: nil becomes NULL and an empty slice an
// empty blob, so that the two stay apart.
func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// fromNullBlob decodes optional bytes: NULL becomes nil and an empty blob an
// empty, non-nil slice.
func fromNullBlob(n sql.Null[[]byte]) []byte {
	switch {
	case !n.Valid:
		return nil
	case n.V == nil:
		return []byte{}
	}
	return n.V
}
