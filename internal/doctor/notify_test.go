package doctor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skytrail/skytrail/internal/doctor"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
)

// doctor --notify sends a test alert through a real server's receivers
// and tells, per integration, that it arrived, or why not in the
// operator's words: the chat robot's errcode, the receiver's HTTP status,
// an unknown receiver.
func TestNotifyTestsEachIntegration(t *testing.T) {
	t.Parallel()
	var hooked atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "broken") {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		hooked.Add(1)
	}))
	t.Cleanup(hook.Close)
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// DingTalk answers 200 with an errcode when it refuses a message.
		_, _ = w.Write([]byte(`{"errcode":310000,"errmsg":"sign not match"}`))
	}))
	t.Cleanup(robot.Close)

	dir := t.TempDir()
	notify := filepath.Join(dir, "notify.yml")
	if err := os.WriteFile(notify, []byte(`route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: `+hook.URL+`/ok
  - name: oncall
    webhook_configs:
      - url: `+hook.URL+`/broken
    dingtalk_configs:
      - url: `+robot.URL+`/robot/send?access_token=x
        secret: SECwrong
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := servertest.StartIn(t, filepath.Join(dir, "data"), func(c *server.Config) { c.Alerting.NotifyConfig = notify })
	cfg := doctor.Config{Server: "http://" + s.Addrs["query API"]}

	r, err := doctor.TestNotification(context.Background(), cfg, "team")
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || hooked.Load() != 1 {
		t.Fatalf("team: report OK %v, webhook called %d times: %+v", r.OK, hooked.Load(), r.Checks)
	}

	// oncall is routed nowhere, yet testable: both its integrations fail,
	// each with its own reason.
	r, err = doctor.TestNotification(context.Background(), cfg, "oncall")
	if err != nil {
		t.Fatal(err)
	}
	if r.OK {
		t.Fatalf("oncall reported OK: %+v", r.Checks)
	}
	got := map[string]doctor.Check{}
	for _, c := range r.Checks {
		got[c.Name] = c
	}
	if c := got["oncall webhook[0]"]; c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "404") || c.Remedy == "" {
		t.Errorf("webhook answering 404: %+v", c)
	}
	if c := got["oncall dingtalk[0]"]; c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "310000") || !strings.Contains(c.Remedy, "secret") {
		t.Errorf("DingTalk errcode: %+v", c)
	}

	r, err = doctor.TestNotification(context.Background(), cfg, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || len(r.Checks) < 2 || !strings.Contains(r.Checks[1].Detail, `"nobody"`) {
		t.Errorf("unknown receiver: %+v", r.Checks)
	}
}
