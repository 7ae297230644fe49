package postgres

import "time"

// list returns l, or an empty list for nil, so that a NOT NULL text[]
// column accepts it.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// fromList returns l, or nil for an empty list.
func fromList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// blob returns b, or an empty slice for nil, so that a NOT NULL bytea column
// accepts it.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// fromBlob returns b, or nil for an empty slice.
func fromBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// utc returns t in UTC, or nil for nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
