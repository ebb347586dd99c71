package tenant

import (
	"errors"
	"strings"
	"testing"

	"github.com/skytrail/skytrail/internal/auth"
)

func TestResolve(t *testing.T) {
	set, err := NewSet([]string{"a", "b", "a", "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "default,a,b" {
		t.Fatalf("names %s, want default,a,b", got)
	}
	onlyA := &auth.Identity{Name: "team-a", Tenants: []string{"a"}}
	aAndB := &auth.Identity{Name: "both", Tenants: []string{"b", "a"}}
	gateway := &auth.Identity{Name: "gateway", Tenants: []string{auth.AnyTenant}}
	plain := &auth.Identity{Name: "plain"}
	for _, c := range []struct {
		id        *auth.Identity
		requested string
		want      string // "" : refused
	}{
		{nil, "", Default}, {nil, "a", "a"}, {nil, " b ", "b"}, {nil, "c", ""}, {nil, "../a", ""},
		{onlyA, "", "a"}, {onlyA, "a", "a"}, {onlyA, "b", ""}, {onlyA, "default", ""},
		{aAndB, "", "b"}, {aAndB, "a", "a"},
		{gateway, "", Default}, {gateway, "b", "b"}, {gateway, "zzz", ""},
		{plain, "", Default}, {plain, "default", Default}, {plain, "a", ""},
	} {
		got, err := set.Resolve(c.id, c.requested)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrRefused) {
				t.Errorf("Resolve(%v, %q) = %q, %v; want refused", c.id, c.requested, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%v, %q) = %q, %v; want %q", c.id, c.requested, got, err, c.want)
		}
	}
	// Without tenants the header is ignored, as before tenants existed.
	single, _ := NewSet(nil)
	if got, err := single.Resolve(onlyA, "whatever"); err != nil || got != Default {
		t.Errorf("single tenant: %q, %v", got, err)
	}
	// A long unknown name is not echoed whole.
	_, err = set.Resolve(nil, strings.Repeat("x", 10000))
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("long tenant name refused with %d characters", len(err.Error()))
	}
}

func TestValidNames(t *testing.T) {
	for _, bad := range []string{"", ".", "..", ".hidden", "a/b", "a b", "*", "é", strings.Repeat("a", 65)} {
		if _, err := NewSet([]string{bad}); err == nil && strings.TrimSpace(bad) != "" {
			t.Errorf("tenant name %q accepted", bad)
		}
	}
	if _, err := NewSet([]string{"team-a", "Team_B.prod", strings.Repeat("a", 64)}); err != nil {
		t.Error(err)
	}
	set, _ := NewSet([]string{"a"})
	if err := set.Check("token x", []string{"a", auth.AnyTenant}); err != nil {
		t.Error(err)
	}
	if err := set.Check("token x", []string{"b"}); err == nil {
		t.Error("a token naming an unconfigured tenant passed the check")
	}
}
