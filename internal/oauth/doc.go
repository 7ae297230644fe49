// Package oauth is the protocol vocabulary shared by Gatehouse's server and
// clients: grant types, error codes and the error type of RFC 6749 §5.2 and
// RFC 6750 §3, the one writer that renders errors as responses, and a small
// client for token endpoints (RFC 6749 §4, §6).
//
// It is named oauth, not oauth2, so that it never clashes with
// golang.org/x/oauth2 in one file.
package oauth
