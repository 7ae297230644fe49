package jose

import "context"

// VerifySET verifies raw as a Security Event Token (RFC 8417): its "typ"
// header must be TypeSET, and it may lack "exp", which SETs omit (RFC 8417
// §2.2 lists none, and its absence keeps a SET from passing for an ID token,
// §4.3). Every other check of Verify applies; want.Types is ignored.
func VerifySET(ctx context.Context, raw string, keys Keys, want Expect) (*Claims, error) {
	want.Types, want.AllowUntyped, want.set = []string{TypeSET}, false, true
	return Verify(ctx, raw, keys, want)
}
