package alerting

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// robot is a chat robot on 127.0.0.1 checking signatures with the robots'
// documented algorithms (written out here, not calling the code under
// test) and answering what reply says.
type robot struct {
	t      *testing.T
	secret string
	reply  string
	mu     sync.Mutex
	bodies []map[string]any
	bad    []string // signature failures
}

func newRobot(t *testing.T, kind, secret, reply string) (*robot, *httptest.Server) {
	rb := &robot{t: t, secret: secret, reply: reply}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("%s robot: %v", kind, err)
		}
		rb.mu.Lock()
		defer rb.mu.Unlock()
		rb.bodies = append(rb.bodies, body)
		switch kind {
		case "dingtalk":
			// https://open.dingtalk.com: sign = urlencode(base64(HmacSHA256(key=secret, msg=timestamp+"\n"+secret))), timestamp in ms, within an hour.
			ts := r.URL.Query().Get("timestamp")
			ms, _ := strconv.ParseInt(ts, 10, 64)
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write([]byte(ts + "\n" + secret))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if r.URL.Query().Get("sign") != want || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
				rb.bad = append(rb.bad, r.URL.RawQuery)
			}
		case "feishu":
			// https://open.feishu.cn: sign = base64(HmacSHA256(key=timestamp+"\n"+secret, msg="")), timestamp in s.
			ts, _ := body["timestamp"].(string)
			mac := hmac.New(sha256.New, []byte(ts+"\n"+secret))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if body["sign"] != want {
				rb.bad = append(rb.bad, ts)
			}
		}
		_, _ = w.Write([]byte(rb.reply))
	}))
	t.Cleanup(srv.Close)
	return rb, srv
}

// notifyOnce sends one firing alert through a robot's integration, as
// the pipeline does, and returns the verdict.
func notifyOnce(t *testing.T, cc chatReceivers) notify.NotifyVerdict {
	t.Helper()
	tmpl, err := template.FromGlobs(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExternalURL, _ = url.Parse("http://skytrail.test")
	ints, err := cc.integrations("team", tmpl, quiet())
	if err != nil || len(ints) != 1 {
		t.Fatalf("integrations: %v, %v", ints, err)
	}
	n := ints[0]
	ctx := notify.WithReceiverName(context.Background(), "team")
	ctx = notify.WithGroupLabels(ctx, model.LabelSet{"alertname": "SkyTrailServiceErrorRate", "service": "orders"})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a := alert.New(model.Alert{
		Labels:      model.LabelSet{"alertname": "SkyTrailServiceErrorRate", "service": "orders", "severity": "critical"},
		Annotations: model.LabelSet{"description": "orders: 12% of its calls failed", "threshold": "5%", AnnotationExampleTraceURL: "http://skytrail.test/traces/abc"},
		StartsAt:    time.Now().Add(-time.Minute),
	}, time.Now(), false)
	return n.Notify(ctx, a)
}

func TestDingTalkSignedAndErrcode(t *testing.T) {
	t.Parallel()
	rb, srv := newRobot(t, "dingtalk", "SECabc", `{"errcode":0,"errmsg":"ok"}`)
	v := notifyOnce(t, chatReceivers{DingTalk: []ChatConfig{{URL: srv.URL + "/robot/send?access_token=tok", Secret: "SECabc"}}})
	if v.Err() != nil {
		t.Fatalf("send: %v", v.Err())
	}
	if len(rb.bodies) != 1 || len(rb.bad) != 0 {
		t.Fatalf("bodies %v, bad signatures %v", rb.bodies, rb.bad)
	}
	md, _ := rb.bodies[0]["markdown"].(map[string]any)
	text, _ := md["text"].(string)
	for _, want := range []string{"FIRING", "SkyTrailServiceErrorRate", "service=orders", "12%", "threshold 5%", "Since ", "http://skytrail.test/traces/abc"} {
		if !strings.Contains(text, want) {
			t.Errorf("the message does not say %q:\n%s", want, text)
		}
	}

	// A reply with a non-zero errcode is a failure, even with HTTP 200.
	rb.reply = `{"errcode":310000,"errmsg":"sign not match"}`
	v = notifyOnce(t, chatReceivers{DingTalk: []ChatConfig{{URL: srv.URL + "/robot/send?access_token=tok", Secret: "SECabc"}}})
	if v.Err() == nil || !strings.Contains(v.Err().Error(), "310000") || v.ShouldRetry() {
		t.Errorf("errcode 310000: %v (retry %v)", v.Err(), v.ShouldRetry())
	}
	// "Sent too fast" is retried.
	rb.reply = `{"errcode":130101,"errmsg":"send too fast"}`
	if v = notifyOnce(t, chatReceivers{DingTalk: []ChatConfig{{URL: srv.URL, Secret: "SECabc"}}}); v.Err() == nil || !v.ShouldRetry() {
		t.Errorf("errcode 130101: %v (retry %v)", v.Err(), v.ShouldRetry())
	}
}

func TestFeishuSigned(t *testing.T) {
	t.Parallel()
	rb, srv := newRobot(t, "feishu", "fs-secret", `{"code":0,"msg":"success"}`)
	if v := notifyOnce(t, chatReceivers{Feishu: []ChatConfig{{URL: srv.URL, Secret: "fs-secret"}}}); v.Err() != nil {
		t.Fatal(v.Err())
	}
	if len(rb.bodies) != 1 || len(rb.bad) != 0 || rb.bodies[0]["msg_type"] != "interactive" {
		t.Fatalf("bodies %v, bad signatures %v", rb.bodies, rb.bad)
	}
	rb.reply = `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`
	if v := notifyOnce(t, chatReceivers{Feishu: []ChatConfig{{URL: srv.URL, Secret: "fs-secret"}}}); v.Err() == nil || !strings.Contains(v.Err().Error(), "19021") {
		t.Errorf("code 19021: %v", v.Err())
	}
}

func TestWeComAndHTTPErrors(t *testing.T) {
	t.Parallel()
	rb, srv := newRobot(t, "wecom", "", `{"errcode":0,"errmsg":"ok"}`)
	if v := notifyOnce(t, chatReceivers{WeCom: []ChatConfig{{URL: srv.URL + "/cgi-bin/webhook/send?key=k"}}}); v.Err() != nil {
		t.Fatal(v.Err())
	}
	if md, _ := rb.bodies[0]["markdown"].(map[string]any); !strings.Contains(md["content"].(string), "SkyTrailServiceErrorRate") {
		t.Errorf("body %v", rb.bodies[0])
	}
	// A receiver answering 500 is retried; one that is not there too; the
	// access key does not leak into the error.
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(fail.Close)
	v := notifyOnce(t, chatReceivers{WeCom: []ChatConfig{{URL: fail.URL + "/send?key=SECRETKEY"}}})
	if v.Err() == nil || !v.ShouldRetry() || !strings.Contains(v.Err().Error(), "500") || strings.Contains(v.Err().Error(), "SECRETKEY") {
		t.Errorf("HTTP 500: %v (retry %v)", v.Err(), v.ShouldRetry())
	}
	fail.Close()
	if v := notifyOnce(t, chatReceivers{WeCom: []ChatConfig{{URL: fail.URL + "/send?key=SECRETKEY"}}}); v.Err() == nil || !v.ShouldRetry() || strings.Contains(v.Err().Error(), "SECRETKEY") {
		t.Errorf("unreachable: %v", v.Err())
	}
}

// A notification configuration with SkyTrail's receivers parses, and
// errors in them name the receiver and the line.
func TestNotifyConfigChatReceivers(t *testing.T) {
	t.Parallel()
	nc, err := parseNotifyConfig([]byte(`route:
  receiver: team
receivers:
  - name: team
    dingtalk_configs:
      - url: https://oapi.dingtalk.com/robot/send?access_token=x
        secret: SEC1
    webhook_configs:
      - url: http://127.0.0.1:9/hook
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(nc.chat["team"].DingTalk) != 1 || len(nc.am.Receivers[0].WebhookConfigs) != 1 {
		t.Errorf("parsed %+v", nc)
	}
	_, err = parseNotifyConfig([]byte("route:\n  receiver: team\nreceivers:\n  - name: team\n    feishu_configs:\n      - url: not a url\n"))
	if err == nil || !strings.Contains(err.Error(), `"team"`) || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("bad feishu url: %v", err)
	}
	_, err = parseNotifyConfig([]byte("route:\n  receiver: team\nreceivers:\n  - name: team\n    dingtalk_configs:\n      - urll: x\n"))
	if err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("unknown field: %v", err)
	}
}

// The templates Slack, Teams and the others render list each alert with
// its value, threshold, start and links.
func TestTextTemplatesCarryLinks(t *testing.T) {
	t.Parallel()
	ext, _ := url.Parse("http://skytrail.test")
	tmpl, err := (&notifier{extURL: ext}).templates(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := alert.New(model.Alert{
		Labels:       model.LabelSet{"alertname": "SkyTrailServiceErrorRate", "service": "orders"},
		Annotations:  model.LabelSet{"description": "orders: 12% of its calls failed", "threshold": "5%", AnnotationExampleTraceURL: "http://skytrail.test/traces/abc", "action": "look"},
		StartsAt:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		GeneratorURL: "http://skytrail.test/traces/abc",
	}, time.Now(), false)
	data := tmpl.Data("team", model.LabelSet{"alertname": "SkyTrailServiceErrorRate"}, nil, "", a)
	for _, name := range []string{"slack.default.text", "msteamsv2.default.text", "discord.default.message", "slack.default.titlelink"} {
		out, err := tmpl.ExecuteTextString(`{{ template "`+name+`" . }}`, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := []string{"12% of its calls failed", "threshold 5%", "2026-01-02 03:04:05 UTC", "http://skytrail.test/traces/abc", "What to do: look"}
		if name == "slack.default.titlelink" {
			want = []string{"http://skytrail.test/traces/abc"}
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s does not say %q:\n%s", name, w, out)
			}
		}
	}
}
