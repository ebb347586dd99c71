package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const stepNotify = "notification"

// TestNotification asks the server to send a test alert through the
// notification receiver named receiver, and says, for each of its
// integrations, whether the message arrived and, when not, why in an
// operator's words (DNS, TLS, the receiver's HTTP status, a chat robot's
// errcode) with what to change. It checks nothing else of the path.
func TestNotification(ctx context.Context, cfg Config, receiver string) (*Report, error) {
	d, _, err := newDoctor(cfg, Options{})
	if err != nil {
		return nil, err
	}
	base := d.cfg.serverURL(nil)
	d.report.Server = base
	if d.serverHealth(ctx, base) {
		d.testNotification(ctx, base, receiver)
	}
	d.report.OK = d.report.Failed() == 0
	return &d.report, nil
}

type testResult struct {
	Integration string `json:"integration"`
	OK          bool   `json:"ok"`
	Error       string `json:"error"`
	Retryable   bool   `json:"retryable"`
}

func (d *doctor) testNotification(ctx context.Context, base, receiver string) {
	start := time.Now()
	u := base + "/api/v1/alerting/receivers/" + url.PathEscape(receiver) + "/test"
	// The server waits for each integration (up to 10 s apiece).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: err.Error()})
		return
	}
	client := *d.http
	client.Timeout = 0 // bounded by ctx: the integrations may be slow
	resp, err := client.Do(req)
	if err != nil {
		d.add(Check{Step: stepNotify, Name: receiver, Target: u, Status: StatusFail, Detail: dialReason(err, 2*time.Minute)})
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: apiError(body, resp.Status),
			Remedy: "Name a receiver defined in the server's notification configuration (--alertmanager-config); GET /api/v1/alerting/status lists the loaded files."})
		return
	case http.StatusUnauthorized, http.StatusForbidden:
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: resp.Status,
			Remedy: "Sending a test notification needs a token that may write: pass --api-token with a read-write token, or sign in as an administrator."})
		return
	default:
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: "POST " + u + ": " + apiError(body, resp.Status)})
		return
	}
	var out struct {
		Results []testResult `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: "cannot decode the server's answer: " + err.Error()})
		return
	}
	if len(out.Results) == 0 {
		d.add(Check{Step: stepNotify, Name: receiver, Status: StatusFail, Detail: "the receiver has no integrations: it sends nowhere",
			Remedy: "Add a webhook_configs, dingtalk_configs, email_configs (or another) entry to the receiver."})
		return
	}
	for _, r := range out.Results {
		name := receiver + " " + r.Integration
		if r.OK {
			d.add(Check{Step: stepNotify, Name: name, Status: StatusOK, Detail: "test notification delivered", Millis: since(start)})
			continue
		}
		why, remedy := notifyReason(r.Error)
		if r.Retryable {
			why += " (Alertmanager would retry)"
		}
		d.add(Check{Step: stepNotify, Name: name, Status: StatusFail, Detail: why, Remedy: remedy, Millis: since(start)})
	}
}

// notifyReason turns an integration's error into what failed and what to do.
func notifyReason(err string) (why, remedy string) {
	e := strings.ToLower(err)
	switch {
	case strings.Contains(e, "no such host") || strings.Contains(e, "server misbehaving") || strings.Contains(e, "lookup "):
		return "DNS: the receiver's host name does not resolve from the SkyTrail server: " + err,
			"Check the URL's host name, and that the server's DNS (or its proxy settings, HTTPS_PROXY) can resolve it."
	case strings.Contains(e, "x509") || strings.Contains(e, "tls:") || strings.Contains(e, "certificate"):
		return "TLS: the receiver's certificate was not accepted: " + err,
			"Give the receiver's CA in its http_config.tls_config.ca_file, or fix the URL's host name to match the certificate."
	case strings.Contains(e, "errcode") || strings.Contains(e, "error code") || strings.Contains(e, "refused the message"):
		return err,
			"DingTalk 310000 means a bad signature or a keyword/IP rule: check the secret and the robot's security settings; Feishu 19021 a bad signature; 130101 or 45009 too many messages."
	case strings.Contains(e, "connection refused"):
		return "connection refused by the receiver: " + err, "Check the receiver's URL and port, and that it runs."
	case strings.Contains(e, "deadline exceeded") || strings.Contains(e, "timeout"):
		return "no answer in time: " + err, "A firewall may drop the traffic, or the receiver is overloaded."
	case strings.Contains(e, "status code") || strings.Contains(e, "unexpected status"):
		return "the receiver answered with an error status: " + err, "Check the URL (a 404 is a wrong path), the credentials (401/403), and the receiver's own logs (5xx)."
	}
	return err, ""
}

// apiError extracts the server's error message, else the HTTP status.
func apiError(body []byte, status string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("%s %s", status, strings.TrimSpace(string(body)))
}
