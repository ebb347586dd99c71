package shop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// order places orders: it stores the order, reserves stock with inventory,
// charges with payment, and announces the order on the "orders" topic.
type order struct {
	tel          *telemetry
	client       *http.Client
	inventoryURL string
	paymentURL   string
	orders       *topic
}

type orderRequest struct {
	UserID   string `json:"user_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

type orderResponse struct {
	OrderID string `json:"order_id"`
}

func (o *order) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", o.place)
	return o.tel.handler(mux)
}

// place serves POST /orders.
func (o *order) place(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req orderRequest
	if !readJSON(w, r, &req) {
		return
	}
	id := newOrderID()
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order_id", id), attribute.String("user_id", req.UserID))
	o.tel.log.InfoContext(ctx, "order received", "order_id", id, "user_id", req.UserID, "item", req.Item, "quantity", req.Quantity)

	o.tel.query(ctx, "INSERT", "orders", "INSERT INTO orders (id, user_id, item, quantity, status) VALUES (?, ?, ?, ?, 'new')", 4*time.Millisecond)

	status, err := postJSON(ctx, o.client, o.inventoryURL+"/reservations", reservation{OrderID: id, Item: req.Item, Quantity: req.Quantity}, nil)
	switch {
	case err != nil:
		o.reject(ctx, w, id, http.StatusBadGateway, fmt.Errorf("reserving stock: %w", err))
		return
	case status == http.StatusConflict:
		o.reject(ctx, w, id, http.StatusUnprocessableEntity, fmt.Errorf("item %s is out of stock", req.Item))
		return
	case status != http.StatusCreated:
		o.reject(ctx, w, id, http.StatusBadGateway, errors.New("reserving stock: inventory answered "+http.StatusText(status)))
		return
	}

	amount := 5 + float64(len(req.Item))*3.5*float64(req.Quantity)
	status, err = postJSON(ctx, o.client, o.paymentURL+"/charges", charge{OrderID: id, UserID: req.UserID, Amount: amount}, nil)
	switch {
	case err != nil:
		o.reject(ctx, w, id, http.StatusBadGateway, fmt.Errorf("charging: %w", err))
		return
	case status == http.StatusPaymentRequired:
		o.reject(ctx, w, id, http.StatusUnprocessableEntity, errors.New("the card was declined"))
		return
	case status != http.StatusCreated:
		o.reject(ctx, w, id, http.StatusBadGateway, errors.New("charging: payment answered "+http.StatusText(status)))
		return
	}

	o.tel.query(ctx, "UPDATE", "orders", "UPDATE orders SET status = 'paid' WHERE id = ?", 3*time.Millisecond)
	o.tel.log.InfoContext(ctx, "order paid", "order_id", id, "amount", amount)
	o.publish(ctx, id, req)

	// BUG, on purpose: the confirmation e-mail goes out in a goroutine
	// started from context.Background(), not from ctx, so its spans start a
	// trace of their own and the checkout's trace never shows the e-mail.
	// SkyTrail's diagnostics find it: root spans in order named "send
	// confirmation email", with no caller. The fix is to hand the goroutine
	// the request's context, without its cancellation so that the e-mail
	// outlives the request (as sdk.Go does):
	//
	//	go o.sendConfirmation(context.WithoutCancel(ctx), id, req.UserID)
	go o.sendConfirmation(context.Background(), id, req.UserID)

	writeJSON(w, http.StatusCreated, orderResponse{OrderID: id})
}

// reject records why an order failed on the request's span, marks the order
// failed in the database, and answers with status: 422 when the order was
// refused (out of stock, card declined), 502 when a service failed.
func (o *order) reject(ctx context.Context, w http.ResponseWriter, id string, status int, err error) {
	fail(ctx, err)
	o.tel.log.ErrorContext(ctx, "order failed", "order_id", id, "error", err.Error(), "status", status)
	o.tel.query(ctx, "UPDATE", "orders", "UPDATE orders SET status = 'failed' WHERE id = ?", 3*time.Millisecond)
	http.Error(w, "order "+id+": "+err.Error(), status)
}

// publish announces a paid order on the "orders" topic. The producer span's
// context travels in the message headers, so the consumer continues the
// trace.
func (o *order) publish(ctx context.Context, id string, req orderRequest) {
	ctx, span := o.tel.tracer.Start(ctx, "send orders",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(o.orders.name),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingKafkaMessageKey(id),
			semconv.ServerAddress("kafka"),
			semconv.ServerPort(9092),
			attribute.String("order_id", id),
		))
	defer span.End()
	body, _ := json.Marshal(paidOrder{OrderID: id, Item: req.Item, Quantity: req.Quantity}) // plain strings and ints: cannot fail
	m := message{Key: id, Value: body, Headers: map[string]string{}}
	o.tel.propagator.Inject(ctx, propagation.MapCarrier(m.Headers))
	pause(ctx, 2*time.Millisecond)
	if err := o.orders.send(m); err != nil {
		fail(ctx, err)
	}
}

// sendConfirmation e-mails the user that the order is placed.
func (o *order) sendConfirmation(ctx context.Context, id, userID string) {
	ctx, span := o.tel.tracer.Start(ctx, "send confirmation email",
		trace.WithAttributes(attribute.String("order_id", id), attribute.String("user_id", userID)))
	defer span.End()
	pause(ctx, 5*time.Millisecond) // render the e-mail
	_, smtp := o.tel.tracer.Start(ctx, "SMTP send",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.ServerAddress("smtp.mail"), semconv.ServerPort(587), attribute.String("peer.service", "smtp")))
	pause(ctx, 30*time.Millisecond)
	smtp.End()
}

// newOrderID returns an ID such as "ord-3f9a1c07b2".
func newOrderID() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "ord-" + hex.EncodeToString(b[:])
}
