// Package victorialogs runs a real VictoriaLogs server for tests: the
// victoria-logs binary of the version SkyTrail embeds, built from the Go
// module proxy once and cached (vmengine), started on a loopback port with
// a temporary data directory and stopped when the test ends.
package victorialogs

import (
	"testing"

	"github.com/skytrail/skytrail/internal/testutil/vmengine"
)

// Version is the VictoriaLogs release the tests run, the one go.mod embeds.
const Version = "v1.52.1"

var engine = &vmengine.Engine{Module: "github.com/VictoriaMetrics/VictoriaLogs", Version: Version, App: "victoria-logs"}

// Server is a running victoria-logs.
type Server = vmengine.Server

// Start runs victoria-logs on a free loopback port with a temporary data
// directory, waits until it answers, and stops it when the test ends.
// args are extra command-line flags (-storageNode=... for an insert/select
// node over storage nodes).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return engine.StartIn(t, t.TempDir(), args...)
}

// Binary returns the path of the victoria-logs binary, building it from the
// module proxy the first time (minutes), for programs that run it
// themselves, such as bench/logingest.
func Binary() (string, error) { return engine.Build() }
