package jose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Errors returned by Verify; every one wraps ErrInvalid.
var (
	ErrInvalid     = errors.New("invalid token")
	ErrMalformed   = fmt.Errorf("%w: malformed", ErrInvalid)
	ErrType        = fmt.Errorf("%w: wrong typ", ErrInvalid)
	ErrIssuer      = fmt.Errorf("%w: wrong issuer", ErrInvalid)
	ErrAudience    = fmt.Errorf("%w: wrong audience", ErrInvalid)
	ErrExpired     = fmt.Errorf("%w: expired", ErrInvalid)
	ErrNotYetValid = fmt.Errorf("%w: not yet valid", ErrInvalid)
	ErrUnknownKey  = fmt.Errorf("%w: unknown signing key", ErrInvalid)
	ErrSignature   = fmt.Errorf("%w: bad signature", ErrInvalid)
)

// DefaultLeeway is the clock skew Verify tolerates when Expect.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// maxTokenSize bounds the input Verify will parse.
const maxTokenSize = 16 << 10

// NumericDate is a JWT time (seconds since the epoch).
type NumericDate = josejwt.NumericDate

// NewNumericDate converts t; the zero time gives nil.
func NewNumericDate(t time.Time) *NumericDate { return josejwt.NewNumericDate(t) }

// Audience is the "aud" claim: one string or an array of strings.
type Audience = josejwt.Audience

// Claims are the claims Gatehouse reads from and writes to its tokens: the
// registered claims of RFC 7519 plus those of RFC 9068 and OIDC that access
// tokens carry.
type Claims struct {
	Issuer    string       `json:"iss,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  Audience     `json:"aud,omitempty"`
	Expiry    *NumericDate `json:"exp,omitempty"`
	NotBefore *NumericDate `json:"nbf,omitempty"`
	IssuedAt  *NumericDate `json:"iat,omitempty"`
	ID        string       `json:"jti,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	Scope     string       `json:"scope,omitempty"`
	SessionID string       `json:"sid,omitempty"`
	Username  string       `json:"preferred_username,omitempty"`
	Roles     []string     `json:"roles,omitempty"`
	AuthTime  *NumericDate `json:"auth_time,omitempty"`
	// Act names the party acting for the subject after a token exchange
	// (RFC 8693 §4.1); nil when the subject acts for itself.
	Act *Actor `json:"act,omitempty"`
	// Cnf binds the token to a key the presenter must hold (RFC 7800);
	// nil for a bearer token any holder may use.
	Cnf *Confirmation `json:"cnf,omitempty"`

	// Raw is the verified payload, for claims not named above.
	Raw json.RawMessage `json:"-"`
	// KeyID is the "kid" header of the token (RFC 7515 §4.1.4), set by
	// Verify; empty if the header has none. It is not a claim.
	KeyID string `json:"-"`
}

// Actor is the "act" claim (RFC 8693 §4.1): the acting party, and in Act the
// party that acted before it, if any.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Keys finds the public keys that may have signed a token. kid is the token's
// "kid" header, possibly empty. *KeySet implements it for a fixed set; a
// remote JWKS with caching implements it in package resource.
type Keys interface {
	VerificationKeys(ctx context.Context, kid string) ([]PublicKey, error)
}

// VerificationKeys implements Keys.
func (s *KeySet) VerificationKeys(_ context.Context, kid string) ([]PublicKey, error) {
	return s.Lookup(kid), nil
}

// Expect is what Verify requires of a token. Issuer, Audience and Types must
// be set: a zero Expect verifies nothing and is rejected.
type Expect struct {
	Issuer   string   // "iss" must equal it
	Audience []string // "aud" must contain at least one of them
	Types    []string // accepted "typ" values; "application/" prefix and case are ignored
	// AllowUntyped also accepts a token without a "typ" header, as RFC 7523
	// client assertions usually are. Never set it for access tokens: RFC 9068
	// §4 requires "at+jwt", and an untyped token could be a JWT of another
	// kind replayed as one (RFC 8725 §3.11). A "typ" that is present must
	// still be one of Types.
	AllowUntyped bool
	// Algorithms is the allow-list; if empty, DefaultAlgorithms.
	Algorithms []string
	// Leeway tolerated on exp, nbf and iat; if zero, DefaultLeeway.
	Leeway time.Duration
	// Now is the time to check against; if zero, time.Now().
	Now time.Time
	// SkipExpiryCheck accepts a token whose "exp" has passed ("exp" must
	// still be present). Only for a token that is a hint rather than a
	// credential, such as the id_token_hint of OpenID Connect RP-Initiated
	// Logout 1.0 §2, which may have expired: never for access tokens.
	SkipExpiryCheck bool

	// set is true for VerifySET: a SET has no "exp" (RFC 8417 §2.2).
	set bool
}

// Verify parses raw as a compact JWS and returns its claims if, and only if,
// every check in the package doc passes and the signature verifies with one
// of keys' keys. Errors wrap ErrInvalid (and a more precise sentinel), except
// configuration errors and errors from keys, which are returned as they are.
func Verify(ctx context.Context, raw string, keys Keys, want Expect) (*Claims, error) {
	if want.Issuer == "" || len(want.Audience) == 0 || len(want.Types) == 0 {
		return nil, errors.New("jose: Expect needs Issuer, Audience and Types")
	}
	algs, err := checkAlgorithms(want.Algorithms)
	if err != nil {
		return nil, err
	}
	if len(raw) > maxTokenSize {
		return nil, fmt.Errorf("%w: token larger than %d bytes", ErrMalformed, maxTokenSize)
	}
	jws, err := gojose.ParseSignedCompact(raw, algs)
	if err != nil {
		if _, ok := errors.AsType[*gojose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, fmt.Errorf("%w: %w: %v", ErrInvalid, ErrAlgorithm, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	header := jws.Signatures[0].Header
	typ, typed := header.ExtraHeaders[gojose.HeaderType]
	if !(typed && typeAllowed(typ, want.Types) || !typed && want.AllowUntyped) {
		return nil, fmt.Errorf("%w: %v", ErrType, typ)
	}
	var c Claims
	payload := jws.UnsafePayloadWithoutVerification()
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if err := checkClaims(&c, want); err != nil {
		return nil, err
	}
	candidates, err := keys.VerificationKeys(ctx, header.KeyID)
	if err != nil {
		return nil, err
	}
	for _, k := range candidates {
		if k.jwk.Algorithm != "" && k.jwk.Algorithm != header.Algorithm {
			continue
		}
		if _, err := jws.Verify(k.jwk); err == nil {
			c.Raw, c.KeyID = payload, header.KeyID
			return &c, nil
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, header.KeyID)
	}
	return nil, ErrSignature
}

func typeAllowed(typ any, allowed []string) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.TrimPrefix(strings.ToLower(s), "application/")
	for _, a := range allowed {
		if strings.EqualFold(s, strings.TrimPrefix(a, "application/")) {
			return true
		}
	}
	return false
}

func checkClaims(c *Claims, want Expect) error {
	if c.Issuer != want.Issuer {
		return fmt.Errorf("%w: %q", ErrIssuer, c.Issuer)
	}
	if !slices.ContainsFunc(want.Audience, c.Audience.Contains) {
		return fmt.Errorf("%w: %v", ErrAudience, []string(c.Audience))
	}
	now := want.Now
	if now.IsZero() {
		now = time.Now()
	}
	leeway := want.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	if c.Expiry == nil && !want.set {
		return fmt.Errorf("%w: no exp", ErrMalformed)
	}
	if c.Expiry != nil && !want.SkipExpiryCheck && now.After(c.Expiry.Time().Add(leeway)) {
		return ErrExpired
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time()) {
		return ErrNotYetValid
	}
	if c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.Time()) {
		return fmt.Errorf("%w: issued in the future", ErrNotYetValid)
	}
	return nil
}

// UnverifiedIssuer returns the "iss" claim of raw without verifying anything.
// Use it only to choose the keys and the Expect to verify raw with — such as
// a client assertion whose issuer names the client — and then call Verify,
// which checks "iss" again.
func UnverifiedIssuer(raw string) (string, error) {
	if len(raw) > maxTokenSize {
		return "", fmt.Errorf("%w: token larger than %d bytes", ErrMalformed, maxTokenSize)
	}
	jws, err := gojose.ParseSignedCompact(raw, asymmetricAlgorithms())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil || c.Issuer == "" {
		return "", fmt.Errorf("%w: no issuer", ErrMalformed)
	}
	return c.Issuer, nil
}
