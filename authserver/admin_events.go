package authserver

// Types of the events the admin API appends to the store's event log
// (CAEP: OpenID Continuous Access Evaluation Profile 1.0; RISC: OpenID
// Risk Incident Sharing and Coordination Profile 1.0).
const (
	caepSessionRevoked   = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	caepCredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	riscAccountDisabled  = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
)
