package oauth

// ParamEndUserIP is the token-request parameter in which a client registered
// as a trusted proxy (such as Gatehouse's gateway, making password grants
// for the users of HTTP Basic) names the network address of the end user it
// acts for, so that the authorization server throttles failed logins per end
// user rather than per proxy. It is a Gatehouse extension: other servers
// ignore it, as RFC 6749 §3.2 requires of unknown parameters, and Gatehouse
// ignores it from clients that are not trusted proxies.
const ParamEndUserIP = "gatehouse_end_user_ip"
