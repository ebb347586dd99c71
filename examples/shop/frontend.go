package shop

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// frontend serves the shop's pages. A product page comes from the Redis
// cache or, on a miss, from inventory; a checkout looks the user's session
// up in Redis and places the order with the order service.
type frontend struct {
	tel          *telemetry
	client       *http.Client
	orderURL     string
	inventoryURL string
}

// CheckoutResponse is what GET /checkout answers.
type CheckoutResponse struct {
	OrderID string `json:"order_id"`
}

func (f *frontend) routes() http.Handler {
	mux := http.NewServeMux()
	// Spans are named by route ("GET /products/{item}"), not by path: one
	// endpoint, however many products.
	mux.HandleFunc("GET /products/{item}", f.product)
	mux.HandleFunc("GET /checkout", f.checkout)
	return f.tel.handler(mux)
}

// product serves GET /products/{item}.
func (f *frontend) product(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	item := r.PathValue("item")
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("item", item))
	s := stock{Item: item, Available: 12} // the cached page's figure
	if !f.tel.cacheGet(ctx, "product:"+item, 0.2) {
		status, err := getJSON(ctx, f.client, f.inventoryURL+"/stock/"+url.PathEscape(item), &s)
		if err == nil && status != http.StatusOK {
			err = errors.New("inventory answered " + http.StatusText(status))
		}
		if err != nil {
			fail(ctx, err)
			http.Error(w, "looking the product up: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	pause(ctx, 4*time.Millisecond) // render the page
	writeJSON(w, http.StatusOK, s)
}

// checkout serves GET /checkout?user_id=&item=.
func (f *frontend) checkout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	req := orderRequest{UserID: q.Get("user_id"), Item: q.Get("item"), Quantity: 1}
	if req.UserID == "" || req.Item == "" {
		http.Error(w, "checkout needs user_id and item", http.StatusBadRequest)
		return
	}
	// Attributes the business cares about: traces are then found by them
	// (tag user_id=u-1042).
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("user_id", req.UserID), attribute.String("item", req.Item))

	if !f.tel.cacheGet(ctx, "session:"+req.UserID, 0.05) {
		pause(ctx, 15*time.Millisecond) // a new session is built
	}

	var placed orderResponse
	status, err := postJSON(ctx, f.client, f.orderURL+"/orders", req, &placed)
	if err != nil {
		fail(ctx, err)
		http.Error(w, "placing the order: "+err.Error(), http.StatusBadGateway)
		return
	}
	if status != http.StatusCreated {
		err := errors.New("order service answered " + http.StatusText(status))
		fail(ctx, err)
		// An order refused (out of stock, card declined) is the customer's
		// answer; anything else is the shop failing.
		if status != http.StatusUnprocessableEntity {
			status = http.StatusBadGateway
		}
		http.Error(w, fmt.Sprintf("placing the order: %v", err), status)
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order_id", placed.OrderID))
	pause(ctx, 3*time.Millisecond) // render the confirmation page
	writeJSON(w, http.StatusOK, CheckoutResponse{OrderID: placed.OrderID})
}
