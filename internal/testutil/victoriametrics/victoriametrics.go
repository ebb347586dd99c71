// Package victoriametrics runs a real VictoriaMetrics server for tests: the
// victoria-metrics binary of the release SkyTrail is tested against, built
// from the Go module proxy once and cached (vmengine), started on a
// loopback port with a temporary data directory and stopped when the test
// ends.
package victoriametrics

import (
	"testing"

	"github.com/skytrail/skytrail/internal/testutil/vmengine"
)

// Version is the VictoriaMetrics release the tests run.
const Version = "v1.151.0"

var engine = &vmengine.Engine{Module: "github.com/VictoriaMetrics/VictoriaMetrics", Version: Version, App: "victoria-metrics",
	Args: []string{
		// Answer with samples as soon as they are written: by default
		// VictoriaMetrics hides the last 30 s from queries and caches
		// answers, which suits scraped data, not a test's checks.
		"-search.latencyOffset=0s",
		"-search.disableCache",
	}}

// Server is a running victoria-metrics.
type Server = vmengine.Server

// Start runs victoria-metrics on a free loopback port with a temporary data
// directory, waits until it answers, and stops it when the test ends.
// args are extra command-line flags.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return engine.StartIn(t, t.TempDir(), args...)
}
