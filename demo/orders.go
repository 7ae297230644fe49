package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// AdminRole may read every order.
const AdminRole = "admin"

// Order is one order, owned by the subject that created it, and readable by
// the subjects its owner shared it with.
type Order struct {
	ID         string    `json:"id"`
	Owner      string    `json:"owner"`
	Item       string    `json:"item"`
	Quantity   int       `json:"quantity"`
	SharedWith []string  `json:"shared_with"`
	CreatedAt  time.Time `json:"created_at"`
}

// policy is the orders service's access rule: an order's owner may do
// anything with it, the subjects it is shared with may read it, and admins
// may do anything with every order.
var policy = resource.ACLPolicy{AdminRoles: []string{AdminRole}}

// acl is the order's access list.
func (o Order) acl() resource.ACL {
	acl := resource.ACL{Owner: o.Owner}
	for _, sub := range o.SharedWith {
		acl.Grants = append(acl.Grants, resource.Grant{Subject: sub, Actions: []resource.Action{resource.Read}})
	}
	return acl
}

// OrdersConfig configures the orders service.
type OrdersConfig struct {
	// Verifier accepts the callers' access tokens. Required.
	Verifier resource.TokenVerifier
	// ConsumersURL, when set, is the consumers service: before an order is
	// created, orders asks it (GET /consumers/{sub}/validate) whether the
	// caller is a valid consumer, through Client.
	ConsumersURL string
	// Client calls consumers; its transport supplies the token (an
	// outbound.Transport with an Exchange source narrows the caller's token
	// to the consumers audience).
	Client *http.Client
}

// Orders is the orders service. It keeps orders in memory.
type Orders struct {
	cfg    OrdersConfig
	mu     sync.RWMutex
	orders map[string]Order
	order  []string // IDs in creation order
}

// NewOrders returns the orders service as a handler that accepts only
// requests with an access token v accepts:
//
//	POST /orders       create an order owned by the caller → 201
//	GET  /orders       the caller's orders (an admin sees all)
//	GET  /orders/{id}  one order, for its owner, those it is shared with, or an admin; else 403
//	PUT  /orders/{id}/sharing  {"users": ["<sub>", ...]}: the owner (or an admin) sets who may read it
func NewOrders(v resource.TokenVerifier) http.Handler {
	return NewOrdersWith(OrdersConfig{Verifier: v})
}

// NewOrdersWith returns the orders service configured by cfg.
func NewOrdersWith(cfg OrdersConfig) http.Handler {
	o := &Orders{cfg: cfg, orders: map[string]Order{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", o.create)
	mux.HandleFunc("GET /orders", o.list)
	mux.HandleFunc("GET /orders/{id}", o.get)
	mux.HandleFunc("PUT /orders/{id}/sharing", o.share)
	return resource.Middleware(cfg.Verifier)(mux)
}

type createOrder struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

func (o *Orders) create(w http.ResponseWriter, r *http.Request) {
	p := resource.FromContext(r.Context())
	var in createOrder
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "body must be JSON {\"item\": string, \"quantity\": number}")
		return
	}
	in.Item = strings.TrimSpace(in.Item)
	if in.Item == "" || len(in.Item) > 200 || in.Quantity < 1 || in.Quantity > 1000 {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "item must be 1-200 characters and quantity 1-1000")
		return
	}
	if err := o.validateConsumer(r); err != nil {
		writeProblem(w, http.StatusForbidden, "access_denied", "the consumers service did not confirm the caller: "+err.Error())
		return
	}
	ord := Order{ID: newID(), Owner: p.Subject, Item: in.Item, Quantity: in.Quantity, SharedWith: []string{}, CreatedAt: time.Now().UTC()}
	o.mu.Lock()
	o.orders[ord.ID] = ord
	o.order = append(o.order, ord.ID)
	o.mu.Unlock()
	w.Header().Set("Location", "/orders/"+ord.ID)
	writeJSON(w, http.StatusCreated, ord)
}

func (o *Orders) list(w http.ResponseWriter, r *http.Request) {
	p := resource.FromContext(r.Context())
	out := []Order{}
	o.mu.RLock()
	for _, id := range o.order {
		if ord := o.orders[id]; policy.Allows(p, ord.acl(), resource.Read) {
			out = append(out, ord)
		}
	}
	o.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

func (o *Orders) get(w http.ResponseWriter, r *http.Request) {
	p := resource.FromContext(r.Context())
	o.mu.RLock()
	ord, ok := o.orders[r.PathValue("id")]
	o.mu.RUnlock()
	if !ok {
		writeProblem(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	if err := policy.Check(p, ord.acl(), resource.Read); err != nil {
		resource.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ord)
}

type sharing struct {
	Users []string `json:"users"`
}

func (o *Orders) share(w http.ResponseWriter, r *http.Request) {
	p := resource.FromContext(r.Context())
	var in sharing
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || len(in.Users) > 100 || slices.Contains(in.Users, "") {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "body must be JSON {\"users\": [subject, ...]} with at most 100 subjects")
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ord, ok := o.orders[r.PathValue("id")]
	if !ok {
		writeProblem(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	if err := policy.Check(p, ord.acl(), resource.Share); err != nil {
		resource.WriteError(w, err)
		return
	}
	slices.Sort(in.Users)
	ord.SharedWith = slices.Compact(in.Users)
	o.orders[ord.ID] = ord
	writeJSON(w, http.StatusOK, ord)
}

// validateConsumer asks the consumers service whether the caller is a
// valid consumer, on the caller's behalf (the request context carries the
// caller for the client's token source).
func (o *Orders) validateConsumer(r *http.Request) error {
	if o.cfg.ConsumersURL == "" {
		return nil
	}
	p := resource.FromContext(r.Context())
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet,
		o.cfg.ConsumersURL+"/consumers/"+url.PathEscape(p.Subject)+"/validate", nil)
	if err != nil {
		return err
	}
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		return errors.New("consumers unreachable")
	}
	defer resp.Body.Close()
	var v Validation
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil || !v.Valid {
		return fmt.Errorf("consumers answered %d", resp.StatusCode)
	}
	return nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
