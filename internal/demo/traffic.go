package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skytrail/skytrail/examples/shop"
)

// maxInFlight bounds the checkouts waiting at once, so a stalled shop does
// not pile up goroutines: arrivals beyond it are dropped and counted.
const maxInFlight = 64

// stats counts the traffic's checkouts.
type stats struct {
	sent, failed, dropped atomic.Int64
	firstOrder            sync.Once
}

func (s *stats) totals() (sent, failed int64) { return s.sent.Load(), s.failed.Load() }

// drive sends checkouts to checkoutURL until ctx ends, arriving as
// independent customers do (exponential gaps averaging 1/rps). Customers'
// browsers are not instrumented: the frontend's span is each trace's root.
func (d *Demo) drive(ctx context.Context, checkoutURL string, rps float64) {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	mean := float64(time.Second) / rps
	slots := make(chan struct{}, maxInFlight)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(time.Duration(rand.ExpFloat64() * mean))
		select {
		case slots <- struct{}{}:
		default:
			d.stats.dropped.Add(1)
			continue
		}
		inFlight.Go(func() {
			defer func() { <-slots }()
			d.checkout(ctx, client, checkoutURL)
		})
	}
}

// checkout is one customer buying one item: a couple of hundred regular
// customers and a catalogue where a few items sell most.
func (d *Demo) checkout(ctx context.Context, client *http.Client, checkoutURL string) {
	q := url.Values{}
	q.Set("user_id", fmt.Sprintf("u-%d", 1000+rand.IntN(200)))
	q.Set("item", fmt.Sprintf("sku-%03d", int(rand.ExpFloat64()*8)%60+1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, checkoutURL+"?"+q.Encode(), nil)
	if err != nil {
		d.log.Error("demo traffic: building a checkout request", "err", err)
		return
	}
	d.stats.sent.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			d.stats.failed.Add(1)
			d.log.Warn("demo traffic: checkout failed", "err", err)
		}
		return
	}
	defer resp.Body.Close()
	var placed shop.CheckoutResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&placed) != nil {
		d.stats.failed.Add(1)
		return
	}
	d.stats.firstOrder.Do(func() { d.printFirstOrder(placed.OrderID) })
}
