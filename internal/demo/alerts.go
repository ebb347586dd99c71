package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/skytrail/skytrail/internal/alerting"
)

// watchAlerts prints each alert of the demo's server once, when it starts
// firing: the newcomer sees a default rule catch the shop's bug without
// setting anything up, and where to read it.
func (d *Demo) watchAlerts(ctx context.Context, every time.Duration) {
	if d.Server.Alerting == nil {
		return
	}
	base := ""
	if addr, ok := d.Server.Addrs["query API"]; ok {
		base = d.baseURL(addr)
	}
	// An alert is its labels; it fires anew with a new activation.
	type firing struct {
		labels   uint64
		activeAt int64
	}
	seen := map[firing]bool{}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		active, _ := d.Server.Alerting.Alerts(ctx)
		for _, a := range active {
			key := firing{model.LabelsToSignature(a.Labels), a.ActiveAt.UnixNano()}
			if a.State != "firing" || seen[key] {
				continue
			}
			seen[key] = true
			fmt.Fprintf(d.out, "\nAlert firing: %s", a.Name)
			if s := a.Labels["service"]; s != "" {
				fmt.Fprintf(d.out, " (%s)", s)
			}
			if s := a.Annotations["summary"]; s != "" {
				fmt.Fprintf(d.out, ": %s", s)
			}
			fmt.Fprintln(d.out)
			if base != "" {
				fmt.Fprintf(d.out, "  see %s/alerts", base)
				if id := a.Annotations[alerting.AnnotationExampleTraceID]; id != "" {
					fmt.Fprintf(d.out, ", an example: %s/traces/%s", base, id)
				}
				fmt.Fprintln(d.out)
			}
		}
	}
}
