package shop

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/SkyAPM/go2sky"
	skyhttp "github.com/SkyAPM/go2sky/plugins/http"
	"github.com/SkyAPM/go2sky/reporter"
	"google.golang.org/grpc/credentials"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

// payment charges cards. It is instrumented with go2sky, SkyWalking's Go
// agent library, and reports over SkyWalking's protocol: order's calls reach
// it with an sw8 header (beside traceparent), which go2sky continues, so
// the checkout stays one trace across both kinds of agent.
type payment struct {
	tracer   *go2sky.Tracer
	reporter go2sky.Reporter
	logs     *bulkShipper // nil: no Config.LogsBulkURL
}

type charge struct {
	OrderID string  `json:"order_id"`
	UserID  string  `json:"user_id"`
	Amount  float64 `json:"amount"`
}

func newPayment(cfg Config) (*payment, error) {
	opts := []reporter.GRPCReporterOption{
		reporter.WithCheckInterval(10 * time.Second),
		reporter.WithLogger(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)),
	}
	if cfg.TLS != nil {
		opts = append(opts, reporter.WithTransportCredentials(credentials.NewTLS(cfg.TLS)))
	}
	if cfg.SkyWalkingToken != "" {
		opts = append(opts, reporter.WithAuthentication(cfg.SkyWalkingToken))
	}
	r, err := reporter.NewGRPCReporter(cfg.SkyWalkingAddr, opts...)
	if err != nil {
		return nil, fmt.Errorf("payment: creating the SkyWalking reporter for %s: %w", cfg.SkyWalkingAddr, err)
	}
	tracer, err := go2sky.NewTracer("payment", go2sky.WithReporter(r), go2sky.WithInstance("payment-1"))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("payment: creating the go2sky tracer: %w", err)
	}
	p := &payment{tracer: tracer, reporter: r}
	if cfg.LogsBulkURL != "" {
		p.logs = newBulkShipper(cfg.LogsBulkURL, cfg.TLS, cfg.OTLPHeaders, cfg.BatchTimeout, cfg.Logger)
	}
	return p, nil
}

func (p *payment) routes() (http.Handler, error) {
	// go2sky's server middleware reads sw8 and opens the entry span. It
	// names every request it sees alike, so each route gets its own.
	entry, err := skyhttp.NewServerMiddleware(p.tracer, skyhttp.WithServerOperationName("POST /charges"))
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /charges", entry(http.HandlerFunc(p.charge)))
	return mux, nil
}

// charge serves POST /charges.
func (p *payment) charge(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req charge
	if !readJSON(w, r, &req) {
		return
	}
	span := go2sky.ActiveSpan(ctx) // the entry span the middleware opened
	span.Tag("order_id", req.OrderID)
	span.Tag("user_id", req.UserID)

	p.checkFraud(ctx, req)
	declined := chance(0.02)
	p.record(ctx, req, declined)
	if p.logs != nil {
		if declined {
			p.logs.line(ctx, "error", "card declined", map[string]any{"order_id": req.OrderID, "user_id": req.UserID, "amount": req.Amount})
		} else {
			p.logs.line(ctx, "info", "charge accepted", map[string]any{"order_id": req.OrderID, "amount": req.Amount})
		}
	}
	if declined {
		span.Error(time.Now(), "error.kind", "card_declined", "message", "the issuing bank declined the card")
		http.Error(w, "card declined", http.StatusPaymentRequired)
		return
	}
	writeJSON(w, http.StatusCreated, req)
}

// checkFraud scores the charge: a local span, child of the entry span
// because it is started from ctx.
func (p *payment) checkFraud(ctx context.Context, req charge) {
	span, ctx, err := p.tracer.CreateLocalSpan(ctx, go2sky.WithOperationName("fraud check"))
	if err != nil {
		return // tracing failed; the work goes on untraced
	}
	defer span.End()
	span.Tag("amount", strconv.FormatFloat(req.Amount, 'f', 2, 64))
	pause(ctx, 8*time.Millisecond)
}

// record stores the outcome in MySQL: an exit span with the database layer
// and tags, which SkyWalking (and SkyTrail) draw as a database node.
func (p *payment) record(ctx context.Context, req charge, declined bool) {
	// A database call carries no trace headers: the injector does nothing.
	span, err := p.tracer.CreateExitSpan(ctx, "INSERT shop.payments", "mysql:3306", func(string, string) error { return nil })
	if err != nil {
		return
	}
	defer span.End()
	span.SetSpanLayer(agentv3.SpanLayer_Database)
	span.Tag(go2sky.TagDBType, "mysql")
	span.Tag(go2sky.TagDBInstance, "shop")
	span.Tag(go2sky.TagDBStatement, "INSERT INTO payments (order_id, amount, status) VALUES (?, ?, ?)")
	status := "paid"
	if declined {
		status = "declined"
	}
	span.Tag(go2sky.TagDBSqlParameters, fmt.Sprintf("[%s, %.2f, %s]", req.OrderID, req.Amount, status))
	pause(ctx, 5*time.Millisecond)
}
