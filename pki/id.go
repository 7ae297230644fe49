package pki

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// serviceSegment is the first path segment of every service's SPIFFE ID.
const serviceSegment = "svc"

// ServiceID returns the SPIFFE ID of the service name in trust domain td:
// spiffe://<td>/svc/<name>. name must be one path segment of letters,
// digits, '.', '-' and '_' (and not "." or "..").
func ServiceID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, errors.New("pki: empty trust domain")
	}
	id, err := spiffeid.FromSegments(td, serviceSegment, name)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("pki: service name %q: %w", name, err)
	}
	return id, nil
}

// MustServiceID is like ServiceID but panics if name is not a valid service
// name. It is for names fixed in the program.
func MustServiceID(td spiffeid.TrustDomain, name string) spiffeid.ID {
	id, err := ServiceID(td, name)
	if err != nil {
		panic(err)
	}
	return id
}

// ServiceName returns the service name of a SPIFFE ID of the form
// spiffe://<td>/svc/<name>, and false for any other ID.
func ServiceName(id spiffeid.ID) (string, bool) {
	name, ok := strings.CutPrefix(id.Path(), "/"+serviceSegment+"/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}
