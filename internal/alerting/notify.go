package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/labelset"
	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// DefaultNotifyConfig is the notification configuration without a file:
// alerts are kept and shown (/api/v1/alerts), sent nowhere, and a critical
// alert mutes the warnings of the same service.
const DefaultNotifyConfig = `route:
  receiver: none
  group_by: [alertname, service]
receivers:
  - name: none
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [service]
`

// notifier is an embedded Alertmanager: the alerts the rules fire go to
// its in-memory alert store, its dispatcher groups and routes them, its
// inhibitor and silences mute them, and its notification pipeline (dedup
// against the notification log, retries with backoff, one goroutine per
// group and receiver, so a slow receiver delays only itself) sends them.
// Silences and the notification log are snapshotted to disk, so a restart
// neither forgets a silence nor repeats a notification.
//
// These are Alertmanager's own packages, used the way its app package
// wires them (app/reloader.go): configuration, routing, grouping,
// inhibition, silences and receivers behave as they do in Alertmanager.
type notifier struct {
	log      *slog.Logger
	dir      string
	extURL   *url.URL
	reg      prometheus.Registerer
	alerts   *mem.Alerts
	silences *silence.Silences
	silencer *silence.Silencer
	nflog    *nflog.Log
	builder  *notify.PipelineBuilder
	dmetrics *dispatch.DispatcherMetrics
	start    time.Time

	mu         sync.Mutex
	dispatcher *dispatch.Dispatcher
	inhibitor  *inhibit.Inhibitor
	conf       *config.Config
	resolveTO  time.Duration
	// receivers holds every configured receiver's integrations, routed
	// or not, so that a test notification can reach any of them.
	receivers map[string][]notify.Integration

	stopc chan struct{}
	wg    sync.WaitGroup
}

// notifyRetention is how long silences and notification log entries are
// kept after they end (Alertmanager's default).
const notifyRetention = 120 * time.Hour

func newNotifier(dir string, extURL *url.URL, reg prometheus.Registerer, log *slog.Logger) (*notifier, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the alerting directory %s: %w", dir, err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n := &notifier{log: log, dir: dir, extURL: extURL, reg: reg, start: time.Now(), stopc: make(chan struct{})}
	var rec eventrecorder.Recorder
	ff := featurecontrol.NoopFlags{}
	var err error
	nflogFile := filepath.Join(dir, "nflog")
	n.nflog, err = nflog.New(nflog.Options{SnapshotFile: nflogFile, Retention: notifyRetention, Logger: log.With("component", "nflog"), Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("opening the notification log %s: %w", nflogFile, err)
	}
	silencesFile := filepath.Join(dir, "silences")
	n.silences, err = silence.New(silence.Options{SnapshotFile: silencesFile, Retention: notifyRetention, Logger: log.With("component", "silences"), Metrics: reg, EventRecorder: rec})
	if err != nil {
		return nil, fmt.Errorf("opening the silences %s: %w", silencesFile, err)
	}
	// Snapshots every minute (Alertmanager: 15) bound what a crash loses;
	// a graceful stop writes them once more.
	n.wg.Go(func() { n.nflog.Maintenance(time.Minute, nflogFile, n.stopc, nil) })
	n.wg.Go(func() { n.silences.Maintenance(time.Minute, silencesFile, n.stopc, nil) })
	n.silencer = silence.NewSilencer(n.silences, log, rec)
	n.alerts, err = mem.NewAlerts(context.Background(), 30*time.Minute, 0, n.silencer, log, rec, reg, ff)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("creating the alert store: %w", err)
	}
	n.builder = notify.NewPipelineBuilder(reg, ff, rec)
	n.dmetrics = dispatch.NewDispatcherMetrics(false, reg, ff)
	return n, nil
}

// notifyConfig is a parsed notification configuration: Alertmanager's, and
// SkyTrail's receivers Alertmanager has not (chat.go).
type notifyConfig struct {
	am   *config.Config
	chat map[string]chatReceivers // by receiver name
}

// loadNotifyConfig reads an Alertmanager configuration file, which may
// also give receivers dingtalk_configs, feishu_configs and wecom_configs.
// "" is DefaultNotifyConfig.
func loadNotifyConfig(file string) (*notifyConfig, error) {
	raw := []byte(DefaultNotifyConfig)
	name := "the default notification configuration"
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the notification configuration: %w", err)
		}
		raw, name = b, file
	}
	nc, err := parseNotifyConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return nc, nil
}

func parseNotifyConfig(raw []byte) (*notifyConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	nc := &notifyConfig{chat: map[string]chatReceivers{}}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "receivers" || root.Content[i+1].Kind != yaml.SequenceNode {
				continue
			}
			for _, rcv := range root.Content[i+1].Content {
				name, chat, err := takeChatConfigs(rcv)
				if err != nil {
					return nil, err
				}
				if !chat.empty() {
					nc.chat[name] = chat
				}
			}
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(&doc); err != nil {
			return nil, err
		}
		raw = buf.Bytes()
	}
	am, err := config.Load(string(raw))
	if err != nil {
		return nil, err
	}
	nc.am = am
	return nc, nil
}

// takeChatConfigs removes SkyTrail's receiver keys from one receiver's
// mapping (Alertmanager refuses keys it does not know) and decodes them.
func takeChatConfigs(rcv *yaml.Node) (string, chatReceivers, error) {
	var out chatReceivers
	if rcv.Kind != yaml.MappingNode {
		return "", out, nil
	}
	var name string
	kept := rcv.Content[:0:0]
	for i := 0; i+1 < len(rcv.Content); i += 2 {
		k, v := rcv.Content[i], rcv.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			name = v.Value
			kept = append(kept, k, v)
			continue
		case "dingtalk_configs":
			err = decodeChat(v, &out.DingTalk)
		case "feishu_configs":
			err = decodeChat(v, &out.Feishu)
		case "wecom_configs":
			err = decodeChat(v, &out.WeCom)
		default:
			kept = append(kept, k, v)
			continue
		}
		if err != nil {
			return "", out, fmt.Errorf("receiver %q, %s (line %d): %w", name, k.Value, k.Line, err)
		}
	}
	rcv.Content = kept
	if err := out.validate(); err != nil {
		return "", out, fmt.Errorf("receiver %q (line %d): %w", name, rcv.Line, err)
	}
	return name, out, nil
}

// decodeChat decodes a list of ChatConfig, refusing keys it does not know
// (yaml.Node.Decode has no strict mode), with their line.
func decodeChat(list *yaml.Node, out *[]ChatConfig) error {
	known := map[string]bool{"url": true, "secret": true, "send_resolved": true, "max_per_minute": true}
	if list.Kind == yaml.SequenceNode {
		for _, item := range list.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i < len(item.Content); i += 2 {
				if k := item.Content[i]; !known[k.Value] {
					return fmt.Errorf("line %d: unknown field %q (want url, secret, send_resolved, max_per_minute)", k.Line, k.Value)
				}
			}
		}
	}
	return list.Decode(out)
}

// apply builds routing, receivers, inhibition and the dispatcher from nc
// and swaps them in. What can fail is done first, so a failure keeps the
// configuration running.
func (n *notifier) apply(nc *notifyConfig) error {
	conf := nc.am
	tmpl, err := n.templates(conf.Templates)
	if err != nil {
		return err
	}
	routes := dispatch.NewRoute(conf.Route, nil)
	active := map[string]bool{}
	routes.Walk(func(r *dispatch.Route) { active[r.RouteOpts.Receiver] = true })
	for name := range nc.chat {
		found := false
		for _, r := range conf.Receivers {
			found = found || r.Name == name
		}
		if !found {
			return fmt.Errorf("receiver %q has chat configs but is not defined", name)
		}
	}
	all, receivers := map[string][]notify.Integration{}, map[string][]notify.Integration{}
	for _, rcv := range conf.Receivers {
		integrations, err := receiver.BuildReceiverIntegrations(rcv, tmpl, n.log)
		if err != nil {
			return fmt.Errorf("receiver %q: %w", rcv.Name, err)
		}
		chat, err := nc.chat[rcv.Name].integrations(rcv.Name, tmpl, n.log)
		if err != nil {
			return fmt.Errorf("receiver %q: %w", rcv.Name, err)
		}
		all[rcv.Name] = append(integrations, chat...)
		if active[rcv.Name] {
			receivers[rcv.Name] = all[rcv.Name]
		}
	}
	intervals := map[string][]timeinterval.TimeInterval{}
	for _, ti := range conf.MuteTimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range conf.TimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	intervener := timeinterval.NewIntervener(intervals)

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inhibitor != nil {
		n.inhibitor.Stop()
	}
	if n.dispatcher != nil {
		n.dispatcher.Stop()
	}
	var rec eventrecorder.Recorder
	inhibitor := inhibit.NewInhibitor(n.alerts, conf.InhibitRules, n.log, rec)
	stage := n.builder.New(receivers, func() time.Duration { return 0 }, inhibitor, n.silencer, intervener, n.nflog, nil)
	timeout := func(d time.Duration) time.Duration { return max(d, notify.MinTimeout) }
	d := dispatch.NewDispatcher(n.alerts, routes, stage, intervener, timeout, 30*time.Second, nil, n.log, rec, n.dmetrics, tmpl)
	go inhibitor.Run()
	inhibitor.WaitForLoading()
	go d.Run(n.start)
	d.WaitForLoading()
	n.inhibitor, n.dispatcher, n.conf, n.receivers = inhibitor, d, conf, all
	n.resolveTO = time.Duration(conf.Global.ResolveTimeout)
	return nil
}

// skytrailTemplates replace the default templates' links to Alertmanager's
// UI with links to the problem's traces, and give chat receivers that show
// text (Slack, Teams, ...) what fired, its value, since when and the links.
const skytrailTemplates = `
{{ define "__alertmanager" }}SkyTrail{{ end }}
{{ define "__alertmanagerURL" }}{{ with index .Alerts 0 }}{{ .GeneratorURL }}{{ end }}{{ end }}
{{ define "skytrail.alert_list" }}{{ range . }}*{{ .Labels.alertname }}*{{ with .Labels.service }} {{ . }}{{ end }}{{ with .Labels.endpoint }} {{ . }}{{ end }}: {{ .Annotations.description }}{{ with .Annotations.threshold }} (threshold {{ . }}){{ end }}
Since {{ .StartsAt.UTC.Format "2006-01-02 15:04:05 UTC" }}{{ if eq .Status "resolved" }}, resolved {{ .EndsAt.UTC.Format "15:04:05 UTC" }}{{ end }}
{{ with .Annotations.example_trace_url }}Example trace: {{ . }}
{{ end }}{{ with .Annotations.traces_url }}Traces: {{ . }}
{{ end }}{{ with .Annotations.service_url }}Service: {{ . }}
{{ end }}{{ with .Annotations.action }}What to do: {{ . }}
{{ end }}
{{ end }}{{ end }}
{{ define "slack.default.text" }}{{ template "skytrail.alert_list" .Alerts }}{{ end }}
{{ define "msteams.default.text" }}{{ template "skytrail.alert_list" .Alerts }}{{ end }}
{{ define "msteamsv2.default.text" }}{{ template "skytrail.alert_list" .Alerts }}{{ end }}
{{ define "discord.default.message" }}{{ template "skytrail.alert_list" .Alerts }}{{ end }}
{{ define "mattermost.default.text" }}{{ template "skytrail.alert_list" .Alerts }}{{ end }}
`

func (n *notifier) templates(userGlobs []string) (*template.Template, error) {
	t, err := template.FromGlobs(nil)
	if err != nil {
		return nil, fmt.Errorf("loading the default notification templates: %w", err)
	}
	if err := t.Parse(strings.NewReader(skytrailTemplates)); err != nil {
		return nil, fmt.Errorf("loading SkyTrail's notification templates: %w", err)
	}
	for _, g := range userGlobs {
		if err := t.FromGlob(g); err != nil {
			return nil, fmt.Errorf("templates %s: %w", g, err)
		}
	}
	t.ExternalURL = n.extURL
	return t, nil
}

// put hands alerts to the dispatcher.
func (n *notifier) put(ctx context.Context, alerts []model.Alert) error {
	now := time.Now()
	n.mu.Lock()
	resolveTO := n.resolveTO
	n.mu.Unlock()
	out := make([]*alert.Alert, 0, len(alerts))
	var errs []error
	for i := range alerts {
		a := &alerts[i]
		timeout := false
		if a.EndsAt.IsZero() {
			timeout, a.EndsAt = true, now.Add(resolveTO)
		}
		if err := alert.Validate(a); err != nil {
			errs = append(errs, fmt.Errorf("alert %s: %w", a.Labels, err))
			continue
		}
		out = append(out, alert.New(*a, now, timeout))
	}
	if err := n.alerts.Put(ctx, out...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// muted says whether labels are silenced (by which silences) or inhibited
// now.
func (n *notifier) muted(ctx context.Context, ls model.LabelSet) (silencedBy []string, inhibited bool) {
	sils, _, err := n.silences.Query(ctx, silence.QState(silence.SilenceStateActive), silence.QMatches(ls))
	if err == nil {
		for _, s := range sils {
			silencedBy = append(silencedBy, s.Id)
		}
	}
	n.mu.Lock()
	ih := n.inhibitor
	n.mu.Unlock()
	if ih != nil {
		inhibited = ih.Mutes(ctx, labelset.FromModel(ls))
	}
	return silencedBy, inhibited
}

func (n *notifier) close() {
	n.mu.Lock()
	if n.inhibitor != nil {
		n.inhibitor.Stop()
	}
	if n.dispatcher != nil {
		n.dispatcher.Stop()
	}
	n.mu.Unlock()
	if n.alerts != nil {
		n.alerts.Close()
	}
	close(n.stopc) // the maintenance goroutines write their last snapshots
	n.wg.Wait()
}
