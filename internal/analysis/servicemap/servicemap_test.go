package servicemap

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

func TestJoinEitherOrder(t *testing.T) {
	j := NewJoiner(10)
	if _, ok, _ := j.AddCall(1, Call{Service: "a"}); ok {
		t.Fatal("a call matched nothing yet")
	}
	if c, ok, _ := j.AddEntry(1, Entry{Service: "b"}); !ok || c.Service != "a" {
		t.Fatalf("entry after call: %v %v", c, ok)
	}
	if _, ok, _ := j.AddEntry(2, Entry{Service: "b"}); ok {
		t.Fatal("an entry matched nothing yet")
	}
	j.Rotate(func(Call) { t.Error("nothing should expire yet") }, func(Entry) { t.Error("nothing should expire yet") })
	if e, ok, _ := j.AddCall(2, Call{Service: "a"}); !ok || e.Service != "b" {
		t.Fatalf("call after entry, one generation later: %v %v", e, ok)
	}
	if j.Len() != 0 {
		t.Fatalf("%d spans still waiting", j.Len())
	}
}

func TestJoinExpiresAndCaps(t *testing.T) {
	j := NewJoiner(2)
	j.AddCall(1, Call{Service: "a"})
	j.AddEntry(7, Entry{Service: "b"})
	if _, _, full := j.AddCall(3, Call{}); !full || j.Overflow != 1 {
		t.Fatalf("third span: full %v overflow %d, want the table full", full, j.Overflow)
	}
	var calls, entries int
	count := func(Call) { calls++ }
	countE := func(Entry) { entries++ }
	j.Rotate(count, countE)
	if calls+entries != 0 {
		t.Fatal("expired after one rotation")
	}
	j.Rotate(count, countE)
	if calls != 1 || entries != 1 || j.Len() != 0 {
		t.Fatalf("after two rotations: %d calls, %d entries expired, %d waiting", calls, entries, j.Len())
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		attrs    map[string]any
		producer bool
		want     Target
	}{
		{map[string]any{"db.system": "mysql", "server.address": "db1", "server.port": int64(3306)}, false, Target{Type: red.NodeDatabase, Name: "db1:3306", System: "mysql"}},
		{map[string]any{"db.system": "postgresql"}, false, Target{Type: red.NodeDatabase, Name: "postgresql", System: "postgresql"}},
		{map[string]any{"db.system": "redis", "server.address": "cache"}, false, Target{Type: red.NodeCache, Name: "cache", System: "redis"}},
		{map[string]any{"sw.layer": "Database", "db.type": "Mysql", "sw.peer": "mysql:3306"}, false, Target{Type: red.NodeDatabase, Name: "mysql:3306", System: "mysql"}},
		{map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders"}, true, Target{Type: red.NodeMQ, Name: "kafka", System: "kafka"}},
		{map[string]any{"url.full": "https://api.example.com/x?y"}, false, Target{Type: red.NodeExternal, Name: "api.example.com", Join: true}},
		{map[string]any{}, false, Target{Type: red.NodeExternal, Name: "unknown", Join: true}},
	} {
		m := pcommon.NewMap()
		if err := m.FromRaw(c.attrs); err != nil {
			t.Fatal(err)
		}
		var a Attrs
		a.Read(m)
		if got := a.Client(c.producer); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.attrs, got, c.want)
		}
	}
}
