package adminapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a request body (a client's JWKS is the largest).
const MaxBodyBytes = 128 << 10

// NewHandler serves svc under /v1/ for callers presenting token as a bearer
// token, compared in constant time. With an empty token every request is
// refused. Unexpected errors are logged to logger (nil: slog.Default()) and
// answered with a bare server_error.
func NewHandler(svc Service, token string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{svc: svc, logger: logger, enabled: token != ""}
	h.token = sha256.Sum256([]byte(token))
	mux := http.NewServeMux()
	h.routes(mux)
	return h.authenticate(mux)
}

type handler struct {
	svc     Service
	logger  *slog.Logger
	token   [sha256.Size]byte
	enabled bool
}

// endpoint is a route's body: it returns the status and value to answer
// with, or an error.
type endpoint func(r *http.Request) (int, any, error)

func (h *handler) routes(mux *http.ServeMux) {
	route := func(pattern string, e endpoint) { mux.Handle(pattern, h.serve(e)) }
	route("GET /v1/users", func(r *http.Request) (int, any, error) {
		return ok(h.svc.ListUsers(r.Context()))
	})
	route("POST /v1/users", func(r *http.Request) (int, any, error) {
		var in NewUser
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return created(h.svc.CreateUser(r.Context(), in))
	})
	route("GET /v1/users/{username}", func(r *http.Request) (int, any, error) {
		return ok(h.svc.GetUser(r.Context(), r.PathValue("username")))
	})
	route("POST /v1/users/{username}/disable", func(r *http.Request) (int, any, error) {
		return ok(h.svc.SetUserDisabled(r.Context(), r.PathValue("username"), true))
	})
	route("POST /v1/users/{username}/enable", func(r *http.Request) (int, any, error) {
		return ok(h.svc.SetUserDisabled(r.Context(), r.PathValue("username"), false))
	})
	route("PUT /v1/users/{username}/password", func(r *http.Request) (int, any, error) {
		var in Password
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, h.svc.SetPassword(r.Context(), r.PathValue("username"), in.Password)
	})
	route("PUT /v1/users/{username}/roles", func(r *http.Request) (int, any, error) {
		var in Roles
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return ok(h.svc.SetRoles(r.Context(), r.PathValue("username"), in.Roles))
	})
	route("GET /v1/users/{username}/sessions", func(r *http.Request) (int, any, error) {
		return ok(h.svc.ListSessions(r.Context(), r.PathValue("username")))
	})
	route("DELETE /v1/users/{username}/sessions", func(r *http.Request) (int, any, error) {
		sids, err := h.svc.RevokeSessions(r.Context(), r.PathValue("username"))
		return ok(Revoked{Sessions: sids}, err)
	})
	route("DELETE /v1/users/{username}/sessions/{sid}", func(r *http.Request) (int, any, error) {
		return http.StatusNoContent, nil, h.svc.RevokeSession(r.Context(), r.PathValue("username"), r.PathValue("sid"))
	})
	route("GET /v1/clients", func(r *http.Request) (int, any, error) {
		return ok(h.svc.ListClients(r.Context()))
	})
	route("POST /v1/clients", func(r *http.Request) (int, any, error) {
		var in NewClient
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return created(h.svc.CreateClient(r.Context(), in))
	})
	route("GET /v1/clients/{id}", func(r *http.Request) (int, any, error) {
		return ok(h.svc.GetClient(r.Context(), r.PathValue("id")))
	})
	route("POST /v1/clients/{id}/disable", func(r *http.Request) (int, any, error) {
		return ok(h.svc.SetClientDisabled(r.Context(), r.PathValue("id"), true))
	})
	route("POST /v1/clients/{id}/enable", func(r *http.Request) (int, any, error) {
		return ok(h.svc.SetClientDisabled(r.Context(), r.PathValue("id"), false))
	})
	route("GET /v1/keys", func(r *http.Request) (int, any, error) {
		return ok(h.svc.ListKeys(r.Context()))
	})
	route("POST /v1/keys/rotate", func(r *http.Request) (int, any, error) {
		var in RotateKey
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return created(h.svc.RotateKey(r.Context(), in))
	})
	route("POST /v1/keys/{kid}/revoke", func(r *http.Request) (int, any, error) {
		return ok(h.svc.RevokeKey(r.Context(), r.PathValue("kid")))
	})
	route("POST /v1/join-tokens", func(r *http.Request) (int, any, error) {
		var in NewJoinToken
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return created(h.svc.CreateJoinToken(r.Context(), in))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, &Error{Code: CodeNotFound, Description: "no such admin endpoint"})
	})
}

func ok[T any](v T, err error) (int, any, error)      { return http.StatusOK, v, err }
func created[T any](v T, err error) (int, any, error) { return http.StatusCreated, v, err }

// authenticate refuses every request without the admin token.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		raw, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		given := sha256.Sum256([]byte(strings.TrimSpace(raw)))
		if !h.enabled || !found || subtle.ConstantTimeCompare(given[:], h.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
			desc := "admin token missing or wrong"
			if !h.enabled {
				desc = "the admin API has no token configured"
			}
			writeJSON(w, http.StatusUnauthorized, &Error{Code: CodeUnauthorized, Description: desc})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serve runs e and writes its answer or its error.
func (h *handler) serve(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		status, v, err := e(r)
		if err != nil {
			h.writeError(r.Context(), w, err)
			return
		}
		if status == http.StatusNoContent {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
	})
}

func (h *handler) writeError(ctx context.Context, w http.ResponseWriter, err error) {
	e := &Error{Code: CodeServerError, Description: "internal error", Status: http.StatusInternalServerError}
	switch {
	case errors.Is(err, ErrInvalid):
		e = &Error{Code: CodeInvalidRequest, Description: err.Error(), Status: http.StatusBadRequest}
	case errors.Is(err, ErrNotFound):
		e = &Error{Code: CodeNotFound, Description: err.Error(), Status: http.StatusNotFound}
	case errors.Is(err, ErrConflict):
		e = &Error{Code: CodeConflict, Description: err.Error(), Status: http.StatusConflict}
	default:
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			e = &Error{Code: CodeInvalidRequest, Description: fmt.Sprintf("body larger than %d bytes", mbe.Limit),
				Status: http.StatusRequestEntityTooLarge}
			break
		}
		h.logger.ErrorContext(ctx, "admin API", "err", err)
	}
	writeJSON(w, e.Status, e)
}

// decode reads a JSON body into v strictly: application/json, one object,
// no unknown fields.
func decode(r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("%w: content type must be application/json", ErrInvalid)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return err
		}
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: body: one JSON object expected", ErrInvalid)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
