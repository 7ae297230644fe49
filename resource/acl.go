package resource

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Action is something a caller may do to an object.
type Action string

// Actions every ACL understands; services may define more.
const (
	Read  Action = "read"
	Write Action = "write"
	Share Action = "share" // change who else may act on the object
)

// ACL is the access list of one object (an aggregate, in domain terms): its
// owner may do everything, and Grants give other subjects or roles some
// actions. Keep it with the object and check it where the object is loaded —
// in a handler or in the domain layer alike.
type ACL struct {
	// Owner is the subject ("sub") that owns the object.
	Owner string
	// Grants give actions to subjects or roles other than the owner.
	Grants []Grant
}

// Grant gives Actions to one Subject, or to everyone with Role.
type Grant struct {
	Subject string   `json:"subject,omitempty"`
	Role    string   `json:"role,omitempty"`
	Actions []Action `json:"actions"`
}

// ACLPolicy holds the rules that apply to every ACL of a service.
type ACLPolicy struct {
	// AdminRoles may do every action on every object (the admin override).
	AdminRoles []string
}

// ACLError is the denial Check returns; it wraps ErrForbidden.
type ACLError struct {
	Action  Action
	Subject string
}

func (e *ACLError) Error() string {
	return fmt.Sprintf("resource: %s may not %s this object", e.Subject, e.Action)
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ACLError) Unwrap() error { return ErrForbidden }

// Allows reports whether p may do act on the object acl protects.
func (pol ACLPolicy) Allows(p *Principal, acl ACL, act Action) bool {
	if p == nil || p.Subject == "" {
		return false
	}
	if p.Subject == acl.Owner || slices.ContainsFunc(pol.AdminRoles, p.HasRole) {
		return true
	}
	for _, g := range acl.Grants {
		if !slices.Contains(g.Actions, act) {
			continue
		}
		if g.Subject != "" && g.Subject == p.Subject || g.Role != "" && p.HasRole(g.Role) {
			return true
		}
	}
	return false
}

// Check returns nil when p may do act, ErrUnauthenticated without a
// principal, and an *ACLError otherwise.
func (pol ACLPolicy) Check(p *Principal, acl ACL, act Action) error {
	if p == nil {
		return ErrUnauthenticated
	}
	if pol.Allows(p, acl, act) {
		return nil
	}
	return &ACLError{Action: act, Subject: p.Subject}
}

// Authorizer returns an Authorizer for one object and action, for use with
// Require when the object is known before the handler runs.
func (pol ACLPolicy) Authorizer(acl ACL, act Action) Authorizer {
	return func(_ context.Context, p *Principal) error { return pol.Check(p, acl, act) }
}

// IsDenied reports whether err is an authorization denial (as opposed to a
// failure to decide).
func IsDenied(err error) bool { return errors.Is(err, ErrForbidden) }
