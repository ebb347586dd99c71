package alerting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/common/model"
)

// ErrUnknownReceiver is returned by TestReceiver for a name the
// notification configuration does not define.
var ErrUnknownReceiver = errors.New("no such receiver")

// TestResult is one integration's answer to a test notification.
type TestResult struct {
	// Integration is the integration's type and index, as Alertmanager's
	// metrics name it ("webhook[0]", "dingtalk[0]", "email[1]").
	Integration string `json:"integration"`
	OK          bool   `json:"ok"`
	// Error is why it failed, as the integration said it: a DNS or TLS
	// error, an HTTP status and body, a chat robot's errcode.
	Error string `json:"error,omitempty"`
	// Retryable says whether Alertmanager would have tried again (a 5xx,
	// a timeout) rather than given up (a 4xx, a bad signature).
	Retryable bool `json:"retryable,omitempty"`
}

// TestReceiver sends one test alert, once and without retries, through
// every integration of the receiver name, routed or not, bypassing
// routing, grouping, silences and the notification log: it answers
// "would a notification reach the team now?", which the pipeline's
// retries would hide for minutes.
func (a *Alerting) TestReceiver(ctx context.Context, name string) ([]TestResult, error) {
	n := a.notify
	n.mu.Lock()
	integrations, ok := n.receivers[name]
	n.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q: define it under receivers in the notification configuration (--alertmanager-config)", ErrUnknownReceiver, name)
	}
	now := time.Now()
	labels := model.LabelSet{
		model.AlertNameLabel: "SkyTrailTestNotification",
		"severity":           "info",
		"service":            "skytrail-doctor",
	}
	test := &alert.Alert{Alert: model.Alert{
		Labels: labels,
		Annotations: model.LabelSet{
			"summary":     "A test notification from SkyTrail",
			"description": "Sent by skytrail doctor --notify (or POST /api/v1/alerting/receivers/" + model.LabelValue(name) + "/test); no action needed.",
		},
		StartsAt:     now,
		EndsAt:       now.Add(5 * time.Minute),
		GeneratorURL: a.cfg.ExternalURL,
	}, UpdatedAt: now}

	ctx = notify.WithReceiverName(ctx, name)
	ctx = notify.WithGroupKey(ctx, "skytrail-test:"+name)
	ctx = notify.WithGroupLabels(ctx, labels)
	ctx = notify.WithNow(ctx, now)
	ctx = notify.WithFiringAlerts(ctx, []uint64{uint64(test.Fingerprint())})
	ctx = notify.WithResolvedAlerts(ctx, nil)

	out := make([]TestResult, 0, len(integrations))
	for i := range integrations {
		in := &integrations[i]
		r := TestResult{Integration: fmt.Sprintf("%s[%d]", in.Name(), in.Index()), OK: true}
		callCtx, cancel := context.WithTimeout(ctx, notify.MinTimeout)
		v := in.Notify(callCtx, test)
		cancel()
		if err := v.Err(); err != nil {
			r.OK, r.Error, r.Retryable = false, err.Error(), v.ShouldRetry()
		}
		out = append(out, r)
	}
	return out, nil
}
