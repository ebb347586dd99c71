package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/template"
	"golang.org/x/time/rate"
)

// The chat robots Alertmanager has no receiver for: DingTalk, Feishu/Lark
// and WeCom (WeChat Work) group robots. Each posts one markdown message a
// notification, signed where the robot asks for it, and takes the robot's
// own error code as the verdict: these robots answer HTTP 200 to a refused
// message, with the reason in the body.

// ChatConfig is one robot: its webhook URL and, for DingTalk and Feishu,
// the signing secret (leave empty when the robot does not sign).
type ChatConfig struct {
	URL          string `yaml:"url"`
	Secret       string `yaml:"secret,omitempty"`
	SendResolved *bool  `yaml:"send_resolved,omitempty"`
	// MaxPerMinute caps the messages sent to this robot (default 20,
	// DingTalk's and WeCom's limit). Past it a notification waits for
	// its turn, up to its timeout, and is then retried.
	MaxPerMinute int `yaml:"max_per_minute,omitempty"`
}

type chatReceivers struct {
	DingTalk []ChatConfig
	Feishu   []ChatConfig
	WeCom    []ChatConfig
}

func (c chatReceivers) empty() bool { return len(c.DingTalk)+len(c.Feishu)+len(c.WeCom) == 0 }

func (c chatReceivers) validate() error {
	for kind, list := range map[string][]ChatConfig{"dingtalk_configs": c.DingTalk, "feishu_configs": c.Feishu, "wecom_configs": c.WeCom} {
		for i, cc := range list {
			u, err := url.Parse(cc.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s[%d]: url %q is not an http(s) URL", kind, i, cc.URL)
			}
			if cc.MaxPerMinute < 0 {
				return fmt.Errorf("%s[%d]: max_per_minute is negative", kind, i)
			}
		}
	}
	return nil
}

func (c chatReceivers) integrations(name string, tmpl *template.Template, log *slog.Logger) ([]notify.Integration, error) {
	var out []notify.Integration
	add := func(kind string, list []ChatConfig, send func(*chatNotifier, context.Context, string, string) (bool, error)) {
		for i, cc := range list {
			per := cc.MaxPerMinute
			if per == 0 {
				per = 20
			}
			n := &chatNotifier{conf: cc, kind: kind, tmpl: tmpl, log: log, send: send,
				client:  &http.Client{Timeout: 10 * time.Second},
				limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(per)), per)}
			out = append(out, notify.NewIntegration(n, n, kind, i, name))
		}
	}
	add("dingtalk", c.DingTalk, (*chatNotifier).sendDingTalk)
	add("feishu", c.Feishu, (*chatNotifier).sendFeishu)
	add("wecom", c.WeCom, (*chatNotifier).sendWeCom)
	return out, nil
}

type chatNotifier struct {
	conf    ChatConfig
	kind    string
	tmpl    *template.Template
	log     *slog.Logger
	client  *http.Client
	limiter *rate.Limiter
	// send posts title and markdown text; retry says whether a failure
	// is worth another attempt.
	send func(n *chatNotifier, ctx context.Context, title, text string) (retry bool, err error)
	now  func() time.Time
}

func (n *chatNotifier) SendResolved() bool { return n.conf.SendResolved == nil || *n.conf.SendResolved }

func (n *chatNotifier) Notify(ctx context.Context, alerts ...*alert.Alert) notify.NotifyVerdict {
	// Waiting here holds up only this group's notification to this robot:
	// each group and receiver has its own goroutine in the pipeline.
	if err := n.limiter.Wait(ctx); err != nil {
		return notify.Retry(0, fmt.Errorf("%s: over %d messages a minute, and the notification's time ran out waiting: %w", n.kind, n.perMinute(), err), notify.RateLimitedReason)
	}
	data := notify.GetTemplateData(ctx, n.tmpl, alerts, n.log)
	title, text := Message(data)
	retry, err := n.send(n, ctx, title, text)
	switch {
	case err == nil:
		return notify.Success()
	case retry:
		return notify.Retry(0, err, notify.ServerErrorReason)
	default:
		return notify.Unrecoverable(err, notify.ClientErrorReason)
	}
}

func (n *chatNotifier) perMinute() int {
	if n.conf.MaxPerMinute > 0 {
		return n.conf.MaxPerMinute
	}
	return 20
}

func (n *chatNotifier) clock() time.Time {
	if n.now != nil {
		return n.now()
	}
	return time.Now()
}

// Message renders a notification as a title and markdown text: what fired,
// the value and threshold, since when, and links to the traces.
func Message(d *template.Data) (title, text string) {
	firing := len(d.Alerts.Firing())
	status := strings.ToUpper(d.Status)
	if d.Status == "firing" {
		status += ":" + strconv.Itoa(firing)
	}
	name := d.CommonLabels["alertname"]
	if name == "" {
		name = d.GroupLabels["alertname"]
	}
	title = fmt.Sprintf("[%s] %s", status, name)
	if s := d.GroupLabels["service"]; s != "" {
		title += " " + s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n", title)
	alerts := slices.Clone(d.Alerts)
	for _, a := range alerts {
		state := "FIRING"
		if a.Status == "resolved" {
			state = "RESOLVED"
		}
		fmt.Fprintf(&b, "\n**%s** %s", state, a.Labels["alertname"])
		for _, k := range []string{"service", "endpoint", "instance", "kind", "severity"} {
			if v := a.Labels[k]; v != "" {
				fmt.Fprintf(&b, " %s=%s", k, v)
			}
		}
		b.WriteString("\n\n")
		if s := a.Annotations["description"]; s != "" {
			b.WriteString(s)
		} else if s := a.Annotations["summary"]; s != "" {
			b.WriteString(s)
		}
		if t := a.Annotations["threshold"]; t != "" {
			fmt.Fprintf(&b, " (threshold %s)", t)
		}
		fmt.Fprintf(&b, "\n\nSince %s", a.StartsAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		if a.Status == "resolved" {
			fmt.Fprintf(&b, ", resolved %s", a.EndsAt.UTC().Format("15:04:05 UTC"))
		}
		b.WriteString("\n")
		for _, l := range []struct{ key, label string }{{"example_trace_url", "Example trace"}, {"traces_url", "Traces"}, {"service_url", "Service"}, {"health_url", "Health"}} {
			if u := a.Annotations[l.key]; u != "" {
				fmt.Fprintf(&b, "\n- [%s](%s)", l.label, u)
			}
		}
		if s := a.Annotations["action"]; s != "" && a.Status != "resolved" {
			fmt.Fprintf(&b, "\n\nWhat to do: %s", s)
		}
		b.WriteString("\n")
	}
	return title, b.String()
}

// post sends body as JSON and returns the reply's body.
func (n *chatNotifier) post(ctx context.Context, u string, body any) ([]byte, bool, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, false, fmt.Errorf("%s: encoding the message: %w", n.kind, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(raw))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", n.kind, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, token and all
		}
		return nil, true, fmt.Errorf("%s: posting to %s: %w", n.kind, redact(u), err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return reply, retry, fmt.Errorf("%s: %s answered HTTP %d: %s", n.kind, redact(u), resp.StatusCode, bytes.TrimSpace(reply))
	}
	return reply, false, nil
}

// redact keeps a robot's access token out of logs and errors.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the robot"
	}
	p.RawQuery = ""
	if i := strings.LastIndex(p.Path, "/"); i >= 0 && len(p.Path)-i > 12 {
		p.Path = p.Path[:i+1] + "…"
	}
	return p.String()
}

// DingTalkSign is DingTalk's robot signature: HMAC-SHA256 of
// "timestamp\nsecret" keyed by the secret, base64. The timestamp is in
// milliseconds.
func DingTalkSign(timestampMs int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMs, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FeishuSign is Feishu's (Lark's) robot signature: HMAC-SHA256 of nothing,
// keyed by "timestamp\nsecret", base64. The timestamp is in seconds.
func FeishuSign(timestampSec int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestampSec, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// robotReply is the body DingTalk and WeCom answer (errcode) and Feishu
// (code, or StatusCode in older versions).
type robotReply struct {
	ErrCode    *int   `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
	Code       *int   `json:"code"`
	Msg        string `json:"msg"`
	StatusCode *int   `json:"StatusCode"`
}

// verdict reads a robot's reply: a non-zero code is a failure; the codes in
// retryable (the robot's "too fast") are worth retrying.
func (n *chatNotifier) verdict(reply []byte, retryable ...int) (bool, error) {
	var r robotReply
	if err := json.Unmarshal(reply, &r); err != nil {
		return true, fmt.Errorf("%s: the robot's reply is not JSON: %.200s", n.kind, reply)
	}
	code, msg := 0, ""
	switch {
	case r.ErrCode != nil:
		code, msg = *r.ErrCode, r.ErrMsg
	case r.Code != nil:
		code, msg = *r.Code, r.Msg
	case r.StatusCode != nil:
		code, msg = *r.StatusCode, r.Msg
	}
	if code == 0 {
		return false, nil
	}
	return slices.Contains(retryable, code), fmt.Errorf("%s: the robot refused the message: error code %d: %s", n.kind, code, msg)
}

func (n *chatNotifier) sendDingTalk(ctx context.Context, title, text string) (bool, error) {
	u := n.conf.URL
	if n.conf.Secret != "" {
		ts := n.clock().UnixMilli()
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + url.QueryEscape(DingTalkSign(ts, n.conf.Secret))
	}
	reply, retry, err := n.post(ctx, u, map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": title, "text": text},
	})
	if err != nil {
		return retry, err
	}
	// 130101: sent too fast.
	return n.verdict(reply, 130101)
}

func (n *chatNotifier) sendFeishu(ctx context.Context, title, text string) (bool, error) {
	color := "red"
	if strings.HasPrefix(title, "[RESOLVED") {
		color = "green"
	}
	body := map[string]any{
		"msg_type": "interactive",
		"card": map[string]any{
			"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": title}, "template": color},
			"elements": []any{map[string]string{"tag": "markdown", "content": text}},
		},
	}
	if n.conf.Secret != "" {
		ts := n.clock().Unix()
		body["timestamp"] = strconv.FormatInt(ts, 10)
		body["sign"] = FeishuSign(ts, n.conf.Secret)
	}
	reply, retry, err := n.post(ctx, n.conf.URL, body)
	if err != nil {
		return retry, err
	}
	// 11232: frequency limited.
	return n.verdict(reply, 11232)
}

func (n *chatNotifier) sendWeCom(ctx context.Context, _, text string) (bool, error) {
	// WeCom caps markdown content at 4096 bytes.
	if len(text) > 4000 {
		text = strings.ToValidUTF8(text[:4000], "") + "\n…"
	}
	reply, retry, err := n.post(ctx, n.conf.URL, map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"content": text},
	})
	if err != nil {
		return retry, err
	}
	// 45009: API frequency limit.
	return n.verdict(reply, 45009)
}
