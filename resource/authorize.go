package resource

import (
	"context"
	"errors"
	"net/http"
)

// Authorizer decides whether the principal may go on. It returns nil to
// allow, or an error wrapping ErrForbidden (or ErrUnauthenticated) to deny.
type Authorizer func(ctx context.Context, p *Principal) error

// RequireRole allows a principal that has at least one of roles.
func RequireRole(roles ...string) Authorizer {
	return func(_ context.Context, p *Principal) error {
		if p == nil {
			return ErrUnauthenticated
		}
		for _, r := range roles {
			if p.HasRole(r) {
				return nil
			}
		}
		return ErrForbidden
	}
}

// RequireScope allows a principal whose token carries every one of scopes.
func RequireScope(scopes ...string) Authorizer {
	return func(_ context.Context, p *Principal) error {
		if p == nil {
			return ErrUnauthenticated
		}
		var missing []string
		for _, s := range scopes {
			if !p.HasScope(s) {
				missing = append(missing, s)
			}
		}
		if missing != nil {
			return &ScopeError{Missing: missing}
		}
		return nil
	}
}

// AllOf allows what every one of as allows; the first denial is returned.
func AllOf(as ...Authorizer) Authorizer {
	return func(ctx context.Context, p *Principal) error {
		for _, a := range as {
			if err := a(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
}

// AnyOf allows what at least one of as allows; if none does, the first
// denial is returned.
func AnyOf(as ...Authorizer) Authorizer {
	return func(ctx context.Context, p *Principal) error {
		var first error
		for _, a := range as {
			err := a(ctx, p)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		if first == nil {
			first = ErrForbidden
		}
		return first
	}
}

// Require returns a handler that runs next only when a allows the principal
// that Middleware put in the request context.
func Require(a Authorizer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a(r.Context(), FromContext(r.Context())); err != nil {
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) {
				err = errors.Join(ErrForbidden, err)
			}
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
