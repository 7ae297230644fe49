// Package ssf is a receiver of the OpenID Shared Signals Framework 1.0
// (SSF): it subscribes to an authorization server's event stream, verifies
// each Security Event Token (RFC 8417) against the issuer's JWKS, and keeps
// a Denylist of revoked access tokens that resource.Verifier and the gateway
// consult on every request (it implements resource.Revocations).
//
// Delivery is by poll (RFC 8936) with long polling by default: the Receiver
// keeps one request waiting at the transmitter, which answers as soon as an
// event is written. It acknowledges every SET it applied in its next poll
// and sends its last acknowledged SET again on every poll, so that after a
// lost connection, a transmitter restart or a switch to another replica it
// resumes after the last event it applied: every event is applied once.
//
// With Config.PushURL it takes push delivery (RFC 8935) instead: the
// transmitter POSTs each SET to PushHandler, which authenticates the
// transmitter by the stream's authorization header, verifies the SET as a
// polled one, applies each jti once and answers 202, or 400 with an error
// object of RFC 8935 §2.3. Run registers the push stream, creates it again
// when the transmitter lost it, enables it again when the transmitter
// paused it (SSF 1.0 §8.1.2), and asks for verification events (SSF 1.0
// §8.1.4) to know that pushes still reach it. See push.go.
//
// The events it acts on (CAEP 1.0 and Gatehouse's own, see
// internal/secevent): session-revoked denies the session ("sid"); Gatehouse's
// token-revoked denies one token ("jti"); credential-change,
// token-claims-change and RISC account-disabled deny every token of the
// user issued up to the event; Gatehouse's client-disabled every token of
// the client issued up to then; Gatehouse's key-retired every token signed
// with the key (Principal.KeyID), whenever issued. Each entry is dropped once every token it
// could match has expired (Config.MaxTokenLifetime after the event), so
// memory is bounded by the tokens revoked while still alive.
//
// The package imports no server code and no SQL: services link it freely.
package ssf
