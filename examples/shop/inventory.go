package shop

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// inventory keeps stock: it reserves items for orders and, consuming the
// "orders" topic, schedules the shipment of paid ones.
type inventory struct {
	tel *telemetry
}

type reservation struct {
	OrderID  string `json:"order_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// paidOrder is the message order publishes on the "orders" topic.
type paidOrder struct {
	OrderID  string `json:"order_id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// stock is what GET /stock/{item} answers.
type stock struct {
	Item      string `json:"item"`
	Available int    `json:"available"`
}

// warehouses are checked in parallel for stock.
var warehouses = []string{"eu-west", "eu-central"}

func (inv *inventory) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stock/{item}", inv.stock)
	mux.HandleFunc("POST /reservations", inv.reserve)
	return inv.tel.handler(mux)
}

// stock serves GET /stock/{item}.
func (inv *inventory) stock(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	item := r.PathValue("item")
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("item", item))
	inv.tel.query(ctx, "SELECT", "stock", "SELECT SUM(available - reserved) FROM stock WHERE item = ?", 5*time.Millisecond)
	writeJSON(w, http.StatusOK, stock{Item: item, Available: rand.IntN(40)})
}

// reserve serves POST /reservations.
func (inv *inventory) reserve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req reservation
	if !readJSON(w, r, &req) {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order_id", req.OrderID), attribute.String("item", req.Item))

	if !inv.tel.cacheGet(ctx, "stock:"+req.Item, 0.25) {
		inv.tel.query(ctx, "SELECT", "stock", "SELECT warehouse, available FROM stock WHERE item = ?", 6*time.Millisecond)
	}

	// Each warehouse is asked in its own goroutine, handed ctx: its spans
	// are children of this request's span, in this trace.
	var wg sync.WaitGroup
	for _, wh := range warehouses {
		wg.Go(func() { inv.checkWarehouse(ctx, wh, req.Item) })
	}
	wg.Wait()

	if chance(0.01) {
		err := errors.New("out of stock: " + req.Item)
		fail(ctx, err)
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	// The occasional slow path: a row lock held by another transaction.
	lockWait := 3 * time.Millisecond
	if chance(0.03) {
		lockWait = 600 * time.Millisecond
		trace.SpanFromContext(ctx).AddEvent("waiting for a row lock on stock", trace.WithAttributes(attribute.String("item", req.Item)))
	}
	inv.tel.query(ctx, "UPDATE", "stock", "UPDATE stock SET reserved = reserved + ? WHERE item = ? AND available - reserved >= ?", lockWait)
	writeJSON(w, http.StatusCreated, req)
}

func (inv *inventory) checkWarehouse(ctx context.Context, warehouse, item string) {
	ctx, span := inv.tel.tracer.Start(ctx, "check warehouse",
		trace.WithAttributes(attribute.String("warehouse", warehouse), attribute.String("item", item)))
	defer span.End()
	inv.tel.query(ctx, "SELECT", "warehouse_stock", "SELECT available FROM warehouse_stock WHERE warehouse = ? AND item = ?", 4*time.Millisecond)
}

// consume processes the "orders" topic until it closes. Each message's
// trace context comes from its headers, so processing joins the trace of
// the checkout that published it.
func (inv *inventory) consume(orders *topic) {
	for m := range orders.messages() {
		inv.ship(m, orders.name)
	}
}

func (inv *inventory) ship(m message, topicName string) {
	// A consumer has no caller's context to inherit, only the message's:
	// the context extracted from its headers is the parent.
	ctx := inv.tel.propagator.Extract(context.Background(), propagation.MapCarrier(m.Headers))
	ctx, span := inv.tel.tracer.Start(ctx, "process "+topicName,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(topicName),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingConsumerGroupName("inventory"),
			semconv.MessagingKafkaMessageKey(m.Key),
			semconv.ServerAddress("kafka"),
			semconv.ServerPort(9092),
		))
	defer span.End()
	var o paidOrder
	if err := json.Unmarshal(m.Value, &o); err != nil {
		fail(ctx, err)
		return
	}
	span.SetAttributes(attribute.String("order_id", o.OrderID))
	inv.tel.query(ctx, "INSERT", "shipments", "INSERT INTO shipments (order_id, item, quantity) VALUES (?, ?, ?)", 4*time.Millisecond)
}
