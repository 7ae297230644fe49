package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// Join tokens: one-time credentials for a service's first certificate.
const (
	// joinTokenBytes is the entropy of a join token (256 bits).
	joinTokenBytes = 32
	// DefaultJoinTokenTTL is how long a join token may be used when its
	// creator names no lifetime.
	DefaultJoinTokenTTL = time.Hour
	// MaxJoinTokenTTL bounds the lifetime of a join token.
	MaxJoinTokenTTL = 7 * 24 * time.Hour
)

// Ways a caller of the issuance endpoint authenticates, for the audit log.
const (
	issueByAccessToken = "access_token"
	issueByJoinToken   = "join_token"
	issueByCertificate = "certificate"
)

// issuanceCaller is an authenticated caller of the issuance endpoint.
type issuanceCaller struct {
	// client is the service: the certificate is for its ID.
	client store.Client
	// method is how it authenticated: one of the issueBy constants.
	method string
	// joinHash is the hash of the join token it presented, to be used up
	// once the request has passed every check; empty for other methods.
	joinHash string
}

// issuanceCaller authenticates a caller of the issuance endpoint, which may
// present
//   - "Authorization: Bearer <JWT>": its own client_credentials access
//     token (serviceClient);
//   - "Authorization: Bearer <join token>": a one-time join token from
//     `gatehouse ca join-token` (a value without dots, so never a JWT);
//   - no Authorization header, over the mutual-TLS listener: the
//     certificate it is renewing, which must verify against the CA's
//     bundle now.
//
// In each case the service is a client, enabled and allowed
// client_credentials, whose ID is the service name: disabling the client
// stops its issuance by every method.
func (s *Server) issuanceCaller(ctx context.Context, r *http.Request) (issuanceCaller, error) {
	h := r.Header.Get("Authorization")
	if raw, ok := bearer(h); ok && strings.Count(raw, ".") != 2 {
		return s.joinTokenCaller(ctx, raw)
	}
	if h == "" && peerCertificate(r) != nil {
		return s.certificateCaller(ctx, r)
	}
	c, err := s.serviceClient(ctx, r)
	return issuanceCaller{client: c, method: issueByAccessToken}, err
}

// errJoinToken is the one answer to a join token that cannot be used, so a
// caller learns nothing about which tokens exist.
var errJoinToken = &oauth.Error{Code: oauth.ErrInvalidToken, Description: "the join token is unknown, used or expired",
	Challenge: oauth.BearerChallenge(pkiRealm, oauth.ErrInvalidToken, "the join token is unknown, used or expired")}

// joinTokenCaller checks a join token without using it up.
func (s *Server) joinTokenCaller(ctx context.Context, raw string) (issuanceCaller, error) {
	hash := s.cfg.Keyring.Hasher(keyring.PurposeJoinToken).Hash(raw)
	jt, err := s.cfg.Store.GetJoinToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		s.audit(ctx, "certificate refused", "reason", "unknown join token")
		return issuanceCaller{}, errJoinToken
	}
	if err != nil {
		return issuanceCaller{}, s.internal(ctx, "get join token", err)
	}
	if jt.UsedAt != nil || !s.cfg.Now().Before(jt.ExpiresAt) {
		s.audit(ctx, "certificate refused", "client_id", jt.Name, "reason", "join token used or expired")
		return issuanceCaller{}, errJoinToken
	}
	c, err := s.service(ctx, jt.Name, &oauth.Error{Code: oauth.ErrAccessDenied,
		Description: fmt.Sprintf("the join token's service %q is not an enabled client allowed client_credentials", jt.Name)})
	return issuanceCaller{client: c, method: issueByJoinToken, joinHash: hash}, err
}

// useJoinToken uses up the join token with hash; a concurrent request that
// used it first makes this one fail as if the token were unknown.
func (s *Server) useJoinToken(ctx context.Context, hash, name string) error {
	_, err := s.cfg.Store.UseJoinToken(ctx, hash, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrReused), errors.Is(err, store.ErrInactive):
		s.audit(ctx, "certificate refused", "client_id", name, "reason", "join token used or expired")
		return errJoinToken
	case err != nil:
		return s.internal(ctx, "use join token", err)
	}
	return nil
}

// certificateCaller authenticates a service renewing its certificate with
// that certificate, over mutual TLS.
func (s *Server) certificateCaller(ctx context.Context, r *http.Request) (issuanceCaller, error) {
	id, _, err := x509svid.Verify(r.TLS.PeerCertificates, caBundle{s.cfg.CA}, x509svid.WithTime(s.cfg.Now()))
	if err != nil {
		s.audit(ctx, "certificate refused", "reason", "client certificate: "+err.Error())
		return issuanceCaller{}, &oauth.Error{Code: oauth.ErrAccessDenied,
			Description: "the client certificate does not verify against the trust bundle"}
	}
	name, ok := pki.ServiceName(id)
	if !ok {
		return issuanceCaller{}, &oauth.Error{Code: oauth.ErrAccessDenied,
			Description: fmt.Sprintf("the client certificate names %s, not a service (spiffe://<td>/svc/<name>)", id)}
	}
	c, err := s.service(ctx, name, &oauth.Error{Code: oauth.ErrAccessDenied,
		Description: fmt.Sprintf("the certificate's service %q is not an enabled client allowed client_credentials", name)})
	if err != nil {
		return issuanceCaller{}, err
	}
	if !issuedWhileEnabled(c, ca.IssuedAt(r.TLS.PeerCertificates[0])) {
		// Issued before the client was last disabled: enabling the client
		// again brings none of its earlier credentials back.
		s.audit(ctx, "certificate refused", "client_id", name, "reason", "certificate issued before the client was last disabled")
		return issuanceCaller{}, &oauth.Error{Code: oauth.ErrAccessDenied,
			Description: "the client certificate was issued before the client was last disabled"}
	}
	return issuanceCaller{client: c, method: issueByCertificate}, nil
}

// CreateJoinToken implements adminapi.Service: a token of 256 random bits,
// stored by its keyed hash, for the client named by jt.Name.
func (a *Admin) CreateJoinToken(ctx context.Context, jt adminapi.NewJoinToken) (adminapi.JoinToken, error) {
	if a.cfg.Keyring == nil {
		return adminapi.JoinToken{}, errNoKeyring
	}
	ttl := time.Duration(jt.TTL)
	switch {
	case ttl == 0:
		ttl = DefaultJoinTokenTTL
	case ttl < 0 || ttl > MaxJoinTokenTTL:
		return adminapi.JoinToken{}, invalid("join token ttl %s: want more than 0 and at most %s", ttl, MaxJoinTokenTTL)
	}
	// Any trust domain will do to check that the name is one path segment.
	if _, err := pki.ServiceID(spiffeid.RequireTrustDomainFromString("example.org"), jt.Name); err != nil {
		return adminapi.JoinToken{}, invalid("join token for %q: not a service name", jt.Name)
	}
	if _, err := a.cfg.Store.GetClient(ctx, jt.Name); err != nil {
		return adminapi.JoinToken{}, apiError(fmt.Errorf("join token for %q: register the service as a client first: %w", jt.Name, err))
	}
	raw := keyring.RandomToken(joinTokenBytes)
	now := a.cfg.Now().UTC()
	rec := store.JoinToken{Hash: a.cfg.Keyring.Hasher(keyring.PurposeJoinToken).Hash(raw), Name: jt.Name,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := a.cfg.Store.CreateJoinToken(ctx, rec); err != nil {
		return adminapi.JoinToken{}, fmt.Errorf("join token for %q: %w", jt.Name, err)
	}
	a.audit(ctx, "join token created", "client_id", jt.Name, "expires_at", rec.ExpiresAt)
	return adminapi.JoinToken{Name: jt.Name, Token: raw, ExpiresAt: rec.ExpiresAt}, nil
}
