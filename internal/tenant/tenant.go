// Package tenant names the tenants a server keeps apart and says which one
// a request belongs to. A tenant is configured (--tenants, or on a token or
// user), never created by a request: a header naming 50,000 tenants opens
// no store, it is refused 50,000 times.
//
// Which tenant a request is for: the one its X-Scope-OrgID header (or gRPC
// metadata) names, when the identity that sent it may use that tenant;
// without the header, the identity's own (its first tenant), or the
// default tenant. The server keeps one set of stores, analysis, alerting
// and query handlers a tenant, so what one tenant sends no other can read.
package tenant

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/skytrail/skytrail/internal/auth"
)

// Default is the tenant of requests that name none, and the only one of a
// server started without --tenants: it keeps today's data directory.
const Default = "default"

// Header is the HTTP header (and, lower-cased, the gRPC metadata key) a
// request names its tenant in, as Grafana Mimir, Loki and Tempo read it.
const Header = "X-Scope-OrgID"

// MetadataKey is Header as gRPC metadata carries it.
const MetadataKey = "x-scope-orgid"

// maxNameLength bounds a tenant's name: it becomes a directory name.
const maxNameLength = 64

// ErrRefused is what every refusal of Resolve wraps: the request names a
// tenant that is not configured, or one its identity may not use.
var ErrRefused = errors.New("tenant refused")

// Valid checks that name can name a tenant: 1-64 letters, digits, '-', '_'
// or '.', not starting with '.' (it names a directory), and not "*".
func Valid(name string) error {
	if name == "" || len(name) > maxNameLength {
		return fmt.Errorf("tenant name %q: want 1 to %d characters", name, maxNameLength)
	}
	if name[0] == '.' {
		return fmt.Errorf("tenant name %q: must not start with '.'", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("tenant name %q: want letters, digits, '-', '_' or '.'", name)
		}
	}
	return nil
}

// Set is the configured tenants. The zero value is not usable: see NewSet.
type Set struct {
	names []string // Default first, then as configured
	known map[string]bool
}

// NewSet is the default tenant and names (duplicates and "default" itself
// are allowed and kept once).
func NewSet(names []string) (*Set, error) {
	s := &Set{names: []string{Default}, known: map[string]bool{Default: true}}
	for _, n := range names {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if err := Valid(n); err != nil {
			return nil, fmt.Errorf("--tenants: %w", err)
		}
		if !s.known[n] {
			s.known[n] = true
			s.names = append(s.names, n)
		}
	}
	return s, nil
}

// Names are the tenants, Default first.
func (s *Set) Names() []string { return s.names }

// Multi tells whether there is more than the default tenant. A server
// without tenants ignores X-Scope-OrgID, as it did before tenants existed.
func (s *Set) Multi() bool { return len(s.names) > 1 }

// Check says which tenants of an identity's list are not configured: a
// token or user given a tenant the server does not keep is a mistake to
// report at start, not a request refused later.
func (s *Set) Check(what string, tenants []string) error {
	for _, t := range tenants {
		if t != auth.AnyTenant && !s.known[t] {
			return fmt.Errorf("%s names tenant %q, which is not configured: add it to --tenants", what, t)
		}
	}
	return nil
}

// Resolve is the tenant a request is for. id is who sent it (nil when the
// server asks for no credentials: any configured tenant may be named);
// requested is its X-Scope-OrgID ("" when none). An error wraps
// ErrRefused and says why, without listing the other tenants.
func (s *Set) Resolve(id *auth.Identity, requested string) (string, error) {
	if !s.Multi() {
		return Default, nil
	}
	requested = strings.TrimSpace(requested)
	var allowed []string
	if id != nil {
		allowed = id.Tenants
	}
	if requested == "" {
		if len(allowed) > 0 && allowed[0] != auth.AnyTenant {
			return allowed[0], nil
		}
		return Default, nil
	}
	if !s.known[requested] {
		if len(requested) > maxNameLength {
			requested = requested[:maxNameLength] + "..."
		}
		return "", fmt.Errorf("%w: %s %q is not a tenant this server keeps (tenants are configured with --tenants, never created by a request)", ErrRefused, Header, requested)
	}
	switch {
	case id == nil, requested == Default && len(allowed) == 0,
		slices.Contains(allowed, requested), slices.Contains(allowed, auth.AnyTenant):
		return requested, nil
	}
	return "", fmt.Errorf("%w: %s may not use tenant %q named in %s (give it tenant=%s in its tokens or users file)", ErrRefused, id.Name, requested, Header, requested)
}
