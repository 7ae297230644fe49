package ssf

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// Denylist holds revocations: of single tokens by jti, of sessions by sid,
// of signing keys by kid, and not-before times per subject and per client. Each entry carries the
// time after which it can match no live token and is dropped by Sweep. The
// zero value is empty and ready; it is safe for concurrent use.
type Denylist struct {
	size atomic.Int64 // entries in all maps: an empty list costs one load

	mu       sync.RWMutex
	tokens   map[string]time.Time // jti → drop at
	sessions map[string]time.Time // sid → drop at
	keys     map[string]time.Time // kid → drop at
	subjects map[string]notBefore // sub → tokens issued up to before are revoked
	clients  map[string]notBefore // client_id → likewise
}

type notBefore struct {
	before time.Time // tokens issued at or before it are revoked
	dropAt time.Time
}

// RevokeToken denies the token with jti until dropAt.
func (d *Denylist) RevokeToken(jti string, dropAt time.Time) {
	d.put(&d.tokens, jti, dropAt)
}

// RevokeSession denies every token of session sid until dropAt.
func (d *Denylist) RevokeSession(sid string, dropAt time.Time) {
	d.put(&d.sessions, sid, dropAt)
}

// RevokeKey denies, until dropAt, every token signed with the key kid: the
// issuer stopped trusting it.
func (d *Denylist) RevokeKey(kid string, dropAt time.Time) {
	d.put(&d.keys, kid, dropAt)
}

// RevokeSubject denies, until dropAt, every token of subject sub issued at
// or before before. Tokens carry iat in whole seconds, so a token issued in
// the same second as the event is refused too: the safe side.
func (d *Denylist) RevokeSubject(sub string, before, dropAt time.Time) {
	d.putNotBefore(&d.subjects, sub, before, dropAt)
}

// RevokeClient denies, until dropAt, every token issued to client at or
// before before.
func (d *Denylist) RevokeClient(client string, before, dropAt time.Time) {
	d.putNotBefore(&d.clients, client, before, dropAt)
}

func (d *Denylist) put(m *map[string]time.Time, key string, dropAt time.Time) {
	if key == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if *m == nil {
		*m = map[string]time.Time{}
	}
	old, ok := (*m)[key]
	if !ok {
		d.size.Add(1)
	}
	if dropAt.After(old) {
		(*m)[key] = dropAt
	}
}

func (d *Denylist) putNotBefore(m *map[string]notBefore, key string, before, dropAt time.Time) {
	if key == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if *m == nil {
		*m = map[string]notBefore{}
	}
	old, ok := (*m)[key]
	if !ok {
		d.size.Add(1)
	}
	if before.After(old.before) {
		old.before = before
	}
	if dropAt.After(old.dropAt) {
		old.dropAt = dropAt
	}
	(*m)[key] = old
}

// Revoked reports whether p's token is denied. It allocates nothing.
func (d *Denylist) Revoked(p *resource.Principal) bool {
	if d.size.Load() == 0 {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if p.TokenID != "" {
		if _, ok := d.tokens[p.TokenID]; ok {
			return true
		}
	}
	if p.SessionID != "" {
		if _, ok := d.sessions[p.SessionID]; ok {
			return true
		}
	}
	if p.KeyID != "" {
		if _, ok := d.keys[p.KeyID]; ok {
			return true
		}
	}
	if nb, ok := d.subjects[p.Subject]; ok && !p.IssuedAt.After(nb.before) {
		return true
	}
	if nb, ok := d.clients[p.ClientID]; ok && !p.IssuedAt.After(nb.before) {
		return true
	}
	return false
}

// Sweep drops the entries that can match no live token at now and returns
// how many it dropped.
func (d *Denylist) Sweep(now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range []map[string]time.Time{d.tokens, d.sessions, d.keys} {
		for k, at := range m {
			if now.After(at) {
				delete(m, k)
				n++
			}
		}
	}
	for _, m := range []map[string]notBefore{d.subjects, d.clients} {
		for k, nb := range m {
			if now.After(nb.dropAt) {
				delete(m, k)
				n++
			}
		}
	}
	d.size.Add(int64(-n))
	return n
}

// Len returns the number of entries.
func (d *Denylist) Len() int { return int(d.size.Load()) }
