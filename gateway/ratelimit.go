package gateway

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// identity is what a rate limit counts requests by: the verified subject,
// else the client's address. The two never collide.
type identity struct {
	subject bool
	id      string
}

// subjectIdentity and addressIdentity build identities.
func subjectIdentity(sub string) identity { return identity{subject: true, id: sub} }

// addressIdentity is the client's IP address, as the connection shows it
// (not X-Forwarded-For, which the client writes).
func addressIdentity(r *http.Request) identity {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return identity{id: host}
}

// limiter holds a token bucket per identity for one RateLimit. It tracks at
// most max identities: when full, it forgets the buckets that have refilled
// (a full bucket is the same as a new one), and if those are too few, others
// at random, so that each sweep frees at least an eighth of the room. A
// forgotten bucket starts full again, so under more identities than max
// within one refill period the limit is approximate. Safe for concurrent
// use.
type limiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[identity]*rate.Limiter
}

// newLimiter returns a limiter for l, or nil if l sets no limit.
func newLimiter(l RateLimit, keys int, now func() time.Time) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	burst := l.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(l.Rate)))
	}
	return &limiter{limit: rate.Limit(l.Rate), burst: burst, max: keys, now: now, buckets: map[identity]*rate.Limiter{}}
}

// wait takes one token from id's bucket and returns zero, or, if the bucket
// is empty, takes nothing and returns how long until a token is there.
func (l *limiter) wait(id identity) time.Duration {
	now := l.now()
	l.mu.Lock()
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[id] = b
	}
	l.mu.Unlock()
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// sweep makes room; l.mu is held.
func (l *limiter) sweep(now time.Time) {
	goal := len(l.buckets) - l.max + max(1, l.max/8)
	removed := 0
	for id, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, id)
			removed++
		}
	}
	for id := range l.buckets {
		if removed >= goal {
			break
		}
		delete(l.buckets, id)
		removed++
	}
}

// allow charges id to rt's rate limit. If the bucket is empty it answers
// 429 with Retry-After (whole seconds, rounded up) and returns false.
func (g *Gateway) allow(x *exchange, rt *route, id identity) bool {
	if rt.limiter == nil {
		return true
	}
	d := rt.limiter.wait(id)
	if d == 0 {
		return true
	}
	x.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
	x.reply(outcomeRateLimited, &oauth.Error{Code: "rate_limited", Description: "too many requests, retry later",
		Status: http.StatusTooManyRequests})
	return false
}
