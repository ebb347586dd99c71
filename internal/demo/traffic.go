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

// stats counts the traffic's requests.
type stats struct {
	sent, failed, dropped atomic.Int64
	firstOrder            sync.Once
}

func (s *stats) totals() (sent, failed int64) { return s.sent.Load(), s.failed.Load() }

// drive sends requests to the frontend at frontendURL until ctx ends,
// arriving as independent customers do (exponential gaps averaging 1/rps):
// two product pages for each checkout. Customers' browsers are not
// instrumented: the frontend's span is each trace's root.
func (d *Demo) drive(ctx context.Context, frontendURL string, rps float64) {
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
			if rand.IntN(3) == 0 {
				d.checkout(ctx, client, frontendURL)
			} else {
				d.browse(ctx, client, frontendURL)
			}
		})
	}
}

// item picks a product from a catalogue where a few items sell most.
func item() string { return fmt.Sprintf("sku-%03d", int(rand.ExpFloat64()*8)%60+1) }

// browse is a customer looking at a product page.
func (d *Demo) browse(ctx context.Context, client *http.Client, frontendURL string) {
	d.get(ctx, client, frontendURL+"/products/"+item(), nil)
}

// checkout is one of a couple of hundred regular customers buying an item.
func (d *Demo) checkout(ctx context.Context, client *http.Client, frontendURL string) {
	q := url.Values{"user_id": {fmt.Sprintf("u-%d", 1000+rand.IntN(200))}, "item": {item()}}
	var placed shop.CheckoutResponse
	if d.get(ctx, client, frontendURL+"/checkout?"+q.Encode(), &placed) {
		d.stats.firstOrder.Do(func() { d.printFirstOrder(placed.OrderID) })
	}
}

// get fetches u, decodes the JSON answer into out (when not nil) and
// reports whether it all went well, counting the request and any failure.
func (d *Demo) get(ctx context.Context, client *http.Client, u string, out any) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		d.log.Error("demo traffic: building a request", "url", u, "err", err)
		return false
	}
	d.stats.sent.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			d.stats.failed.Add(1)
			d.log.Warn("demo traffic: request failed", "url", u, "err", err)
		}
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || out != nil && json.NewDecoder(resp.Body).Decode(out) != nil {
		d.stats.failed.Add(1)
		return false
	}
	return true
}
