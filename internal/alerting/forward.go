package alerting

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	promnotifier "github.com/prometheus/prometheus/notifier"
)

// forwarder sends every alert, as the rules engine hands it over, to
// external Alertmanagers' /api/v2/alerts, for teams that already route
// their alerts through one. It is Prometheus' own notifier (queue,
// batching, one send loop per Alertmanager, its metrics
// prometheus_notifications_*), given static targets instead of service
// discovery.
type forwarder struct {
	m    *promnotifier.Manager
	done chan struct{}
}

// forwardQueue is how many alerts wait for the Alertmanagers before the
// oldest are dropped (Prometheus' default).
const forwardQueue = 10000

func newForwarder(urls []string, reg prometheus.Registerer, log *slog.Logger) (*forwarder, error) {
	conf := &promconfig.Config{}
	targets := map[string][]*targetgroup.Group{}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager URL %q: want http(s)://host:port[/prefix]", raw)
		}
		am := promconfig.DefaultAlertmanagerConfig
		am.Scheme, am.PathPrefix = u.Scheme, strings.TrimSuffix(u.Path, "/")
		if u.User != nil {
			p, _ := u.User.Password()
			am.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: u.User.Username(), Password: commoncfg.Secret(p)}
		}
		conf.AlertingConfig.AlertmanagerConfigs = append(conf.AlertingConfig.AlertmanagerConfigs, &am)
		// The keys are the ones ApplyConfig gives the sets.
		targets[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Source:  raw,
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
	}
	m := promnotifier.NewManager(&promnotifier.Options{QueueCapacity: forwardQueue, DrainOnShutdown: true, Registerer: reg},
		model.UTF8Validation, log.With("component", "forward"))
	if err := m.ApplyConfig(conf); err != nil {
		return nil, fmt.Errorf("configuring the Alertmanagers to forward to: %w", err)
	}
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	tsets <- targets
	f := &forwarder{m: m, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		m.Run(tsets)
	}()
	return f, nil
}

// send queues alerts for every Alertmanager; it never blocks.
func (f *forwarder) send(alerts []model.Alert) {
	out := make([]*promnotifier.Alert, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, &promnotifier.Alert{
			Labels:       labelsOf(a.Labels),
			Annotations:  labelsOf(a.Annotations),
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: a.GeneratorURL,
		})
	}
	f.m.Send(out...)
}

// stop sends what is queued, then stops.
func (f *forwarder) stop() {
	f.m.Stop()
	<-f.done
}

func labelsOf(ls model.LabelSet) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for k, v := range ls {
		b.Add(string(k), string(v))
	}
	b.Sort()
	return b.Labels()
}
