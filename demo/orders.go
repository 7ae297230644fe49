package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// AdminRole may read every order.
const AdminRole = "admin"

// Order is one order, owned by the subject that created it.
type Order struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Item      string    `json:"item"`
	Quantity  int       `json:"quantity"`
	CreatedAt time.Time `json:"created_at"`
}

// Orders is the orders service. It keeps orders in memory.
type Orders struct {
	mu     sync.RWMutex
	orders map[string]Order
	order  []string // IDs in creation order
}

// NewOrders returns the orders service as a handler that accepts only
// requests with an access token v accepts:
//
//	POST /orders       create an order owned by the caller → 201
//	GET  /orders       the caller's orders (an admin sees all)
//	GET  /orders/{id}  one order, for its owner or an admin, else 403
func NewOrders(v resource.TokenVerifier) http.Handler {
	o := &Orders{orders: map[string]Order{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", o.create)
	mux.HandleFunc("GET /orders", o.list)
	mux.HandleFunc("GET /orders/{id}", o.get)
	return resource.Middleware(v)(mux)
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
	ord := Order{ID: newID(), Owner: p.Subject, Item: in.Item, Quantity: in.Quantity, CreatedAt: time.Now().UTC()}
	o.mu.Lock()
	o.orders[ord.ID] = ord
	o.order = append(o.order, ord.ID)
	o.mu.Unlock()
	w.Header().Set("Location", "/orders/"+ord.ID)
	writeJSON(w, http.StatusCreated, ord)
}

func (o *Orders) list(w http.ResponseWriter, r *http.Request) {
	p := resource.FromContext(r.Context())
	all := p.HasRole(AdminRole)
	out := []Order{}
	o.mu.RLock()
	for _, id := range o.order {
		if ord := o.orders[id]; all || ord.Owner == p.Subject {
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
	if err := canRead(ord, p); err != nil {
		resource.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ord)
}

// canRead is the order's access rule: its owner, or an admin.
func canRead(ord Order, p *resource.Principal) error {
	if ord.Owner == p.Subject || slices.Contains(p.Roles, AdminRole) {
		return nil
	}
	return errors.Join(resource.ErrForbidden, errors.New("not the order's owner"))
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
