package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
)

func newUserCommand() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{Use: "user", Short: "Manage users (add, list, disable, enable, passwd, roles, sessions, revoke)"}
	af.register(cmd)
	var roles []string
	add := &cobra.Command{
		Use: "add USERNAME", Short: "Add a user; the password is read from a prompt or from stdin", Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			pw, err := readPassword(c)
			if err != nil {
				return err
			}
			u, err := svc.CreateUser(c.Context(), adminapi.NewUser{Username: args[0], Password: pw, Roles: roles})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "added user %s (sub %s, roles %s)\n", u.Username, u.ID, strings.Join(u.Roles, ","))
			return nil
		}),
	}
	add.Flags().StringSliceVar(&roles, "roles", nil, "roles, comma-separated")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, _ []string) error {
			users, err := svc.ListUsers(c.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tSUBJECT\tROLES\tDISABLED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", u.Username, u.ID, strings.Join(u.Roles, ","), u.Disabled)
			}
			return tw.Flush()
		}),
	}
	setDisabled := func(use, short, done string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " USERNAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
				if _, err := svc.SetUserDisabled(c.Context(), args[0], disabled); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s user %s\n", done, args[0])
				return nil
			}),
		}
	}
	passwd := &cobra.Command{
		Use: "passwd USERNAME", Short: "Set a user's password, read from a prompt or from stdin; revokes the user's sessions", Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			pw, err := readPassword(c)
			if err != nil {
				return err
			}
			if err := svc.SetPassword(c.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		}),
	}
	var newRoles []string
	setRoles := &cobra.Command{
		Use: "roles USERNAME --roles a,b", Short: "Replace a user's roles (--roles '' removes them all)", Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			u, err := svc.SetRoles(c.Context(), args[0], newRoles)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "roles of %s: %s\n", u.Username, strings.Join(u.Roles, ","))
			return nil
		}),
	}
	setRoles.Flags().StringSliceVar(&newRoles, "roles", nil, "roles, comma-separated")
	setRoles.MarkFlagRequired("roles")
	cmd.AddCommand(add, list,
		setDisabled("disable", "Disable a user: no more logins or refreshes; revokes the user's sessions", "disabled", true),
		setDisabled("enable", "Enable a disabled user", "enabled", false),
		passwd, setRoles, newSessionsCommand(&af), newRevokeCommand(&af))
	return cmd
}

func newSessionsCommand(af *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use: "sessions USERNAME", Short: "List a user's sessions (refresh-token families)", Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			sessions, err := svc.ListSessions(c.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tCLIENT\tSCOPES\tLOGIN\tLAST_USED\tEXPIRES\tREVOKED")
			for _, s := range sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", s.ID, s.ClientID, strings.Join(s.Scopes, ","),
					s.AuthTime.Format(time.RFC3339), s.LastUsed.Format(time.RFC3339), s.ExpiresAt.Format(time.RFC3339), s.Revoked)
			}
			return tw.Flush()
		}),
	}
}

func newRevokeCommand(af *adminFlags) *cobra.Command {
	var session string
	cmd := &cobra.Command{
		Use: "revoke USERNAME [--session ID]", Short: "Revoke one of a user's sessions, or all of them", Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			if session != "" {
				if err := svc.RevokeSession(c.Context(), args[0], session); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "revoked session %s of %s\n", session, args[0])
				return nil
			}
			ids, err := svc.RevokeSessions(c.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "revoked %d sessions of %s\n", len(ids), args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&session, "session", "", "the session to revoke (default: all)")
	return cmd
}

func newClientCommand() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients (add, list, disable, enable)"}
	af.register(cmd)
	var spec adminapi.NewClient
	var jwksFile string
	add := &cobra.Command{
		Use: "add CLIENT_ID", Short: "Register a client; a generated secret is printed once", Args: cobra.ExactArgs(1),
		RunE: af.run(true, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			spec.ID = args[0]
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--jwks-file: %w", err)
				}
				spec.JWKS = b
			}
			cc, err := svc.CreateClient(c.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "added client %s (grants %s)\n", cc.Client.ID, strings.Join(cc.Client.Grants, ","))
			if cc.Secret != "" {
				fmt.Fprintf(c.OutOrStdout(), "client secret (shown once, stored only hashed): %s\n", cc.Secret)
			}
			return nil
		}),
	}
	f := add.Flags()
	f.StringSliceVar(&spec.Grants, "grants", []string{"client_credentials"}, "allowed grant types, comma-separated")
	f.StringSliceVar(&spec.Scopes, "scopes", nil, "allowed scopes, comma-separated")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uris", nil, "redirect URIs, comma-separated")
	f.StringSliceVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uris", nil, "URIs the end-session endpoint may send the browser to after logout, comma-separated")
	f.StringSliceVar(&spec.Audience, "audience", nil, "audience of its access tokens (default: the server's)")
	f.BoolVar(&spec.Public, "public", false, "a public client (no secret)")
	f.StringVar(&spec.AuthMethod, "auth-method", "", "token endpoint auth method: client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth (its certificate, spiffe://<td>/svc/CLIENT_ID) or none (default: client_secret_basic)")
	f.BoolVar(&spec.CertificateBound, "certificate-bound", false, "bind its access tokens to its TLS client certificate (RFC 8705); it must request them over mutual TLS")
	f.StringVar(&jwksFile, "jwks-file", "", "JSON JWKS file of the client's public keys, for --auth-method private_key_jwt")
	f.BoolVar(&spec.TrustedProxy, "trusted-proxy", false, "let the client name the end user's address for login throttling (a gateway)")
	f.StringVar(&spec.AccessTokenFormat, "access-token-format", "jwt", "format of its access tokens: jwt or opaque")
	f.DurationVar((*time.Duration)(&spec.AccessTokenTTL), "access-token-ttl", 0, "lifetime of its access tokens (default: the server's)")
	f.DurationVar((*time.Duration)(&spec.RefreshTokenTTL), "refresh-token-ttl", 0, "how long its refresh tokens may go unused (default: the server's)")
	f.DurationVar((*time.Duration)(&spec.RefreshAbsoluteTTL), "refresh-absolute-ttl", 0, "how long its sessions may last from the login (default: the server's)")
	f.StringSliceVar(&spec.ExchangeAudiences, "exchange-audiences", nil, "audiences it may request by token exchange, comma-separated")
	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, _ []string) error {
			clients, err := svc.ListClients(c.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tTYPE\tAUTH_METHOD\tGRANTS\tSCOPES\tTOKENS\tTRUSTED_PROXY\tDISABLED")
			for _, cl := range clients {
				kind, method := "confidential", cl.AuthMethod
				if cl.Public {
					kind = "public"
				}
				if method == "" {
					method = "(default)"
				}
				format := cl.AccessTokenFormat
				if format == "" {
					format = "jwt"
				}
				if cl.CertificateBound {
					format += ",certificate-bound" // RFC 8705
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%v\n", cl.ID, kind, method, strings.Join(cl.Grants, ","),
					strings.Join(cl.Scopes, ","), format, cl.TrustedProxy, cl.Disabled)
			}
			return tw.Flush()
		}),
	}
	setDisabled := func(use, short, done string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " CLIENT_ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
				if _, err := svc.SetClientDisabled(c.Context(), args[0], disabled); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s client %s\n", done, args[0])
				return nil
			}),
		}
	}
	cmd.AddCommand(add, list,
		setDisabled("disable", "Disable a client: it can no longer authenticate, and every token issued to it so far is revoked", "disabled", true),
		setDisabled("enable", "Enable a disabled client (tokens revoked by disabling it stay revoked)", "enabled", false))
	return cmd
}

func newKeysCommand() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys (list, rotate, revoke)"}
	af.register(cmd)
	list := &cobra.Command{
		Use: "list", Short: "List signing keys and their state (pending, active, retired, expired)", Args: cobra.NoArgs,
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, _ []string) error {
			keys, err := svc.ListKeys(c.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS_FROM\tRETIRED\tLEAVES_JWKS")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.ActiveAt.Format(time.RFC3339),
					timeOrDash(k.RetiredAt), timeOrDash(k.ExpiresAt))
			}
			return tw.Flush()
		}),
	}
	var alg string
	rotate := &cobra.Command{
		Use:   "rotate [--alg ES256|RS256|EdDSA]",
		Short: "Add a signing key: published at once, signing after the publish delay; the current key then retires",
		Long: `rotate adds a signing key. It is published in the JWKS at once and starts
signing after the publish delay (the server's key_publish_delay with --admin,
--publish-delay on a store), when the current key retires; the retired key
stays published until every token it signed has expired. Running servers pick
the key up within their key_reload_interval.`,
		Args: cobra.NoArgs,
		RunE: af.run(true, func(c *cobra.Command, svc adminapi.Service, _ []string) error {
			if af.admin != "" && c.Flags().Changed("publish-delay") {
				return errors.New("--publish-delay applies to --store only; with --admin the server's key_publish_delay applies")
			}
			k, err := svc.RotateKey(c.Context(), adminapi.RotateKey{Algorithm: alg})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "added %s key %s: published now, signing from %s\n", k.Algorithm, k.ID, k.ActiveAt.Format(time.RFC3339))
			return nil
		}),
	}
	rotate.Flags().StringVar(&alg, "alg", "", "algorithm of the new key: ES256 (default), RS256 or EdDSA")
	rotate.Flags().DurationVar(&af.publishDelay, "publish-delay", 10*time.Minute, "with --store: how long the key is published before it signs")
	revoke := &cobra.Command{
		Use:   "revoke [--] KID",
		Short: "Stop trusting a signing key now: it leaves the JWKS and its tokens are refused",
		Long: `revoke stops trusting a signing key at once, as after a compromise: it never
signs again, leaves the JWKS now, and a key-retired event tells SSF receivers
to refuse every token it signed. Another key must take over: rotate first
(a rotated key still in its publish delay signs from now). Plain rotation
never does this: a rotated-out key stays trusted until its tokens expire.
Running servers pick the change up at once with --admin, within their
key_reload_interval with --store.

A key ID is a JWK thumbprint in base64url and may begin with '-': put it
after '--' (gatehouse keys revoke --store DSN -- -Ov1My...).`,
		Args: cobra.ExactArgs(1),
		RunE: af.run(false, func(c *cobra.Command, svc adminapi.Service, args []string) error {
			k, err := svc.RevokeKey(c.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "revoked key %s: out of the JWKS since %s\n", k.ID, timeOrDash(k.ExpiresAt))
			return nil
		}),
	}
	revoke.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A key ID beginning with '-' reads as a flag.
		return fmt.Errorf("%w (a key ID that begins with '-' goes after '--': gatehouse keys revoke [flags] -- KID)", err)
	})
	cmd.AddCommand(list, rotate, revoke)
	return cmd
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// readPassword prompts twice without echo on a terminal; otherwise it reads
// the first line of stdin. Passwords never come from argv.
func readPassword(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}
