package shop

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// frontend serves the shop's pages. A checkout looks the user's session up
// in Redis and places the order with the order service.
type frontend struct {
	tel      *telemetry
	client   *http.Client
	orderURL string
}

// CheckoutResponse is what GET /checkout answers.
type CheckoutResponse struct {
	OrderID string `json:"order_id"`
}

func (f *frontend) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", f.checkout)
	return f.tel.handler(mux)
}

// checkout serves GET /checkout?user_id=&item=&quantity=.
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
		http.Error(w, fmt.Sprintf("placing the order: %v", err), http.StatusBadGateway)
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order_id", placed.OrderID))
	pause(ctx, 3*time.Millisecond) // render the confirmation page
	writeJSON(w, http.StatusOK, CheckoutResponse{OrderID: placed.OrderID})
}
