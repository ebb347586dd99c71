package server_test

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP reloads the alarm rules. On a node of --peers without --ruler
// there are none to reload: the signal must leave it serving (it was a nil
// dereference that killed the node), and SIGTERM then stops it cleanly.
func TestSIGHUPOnANodeWithoutTheRuler(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	otlpAddr, httpAddr, other := freeAddr(t), freeAddr(t), freeAddr(t)
	var logs lockedBuffer
	node := &process{t: t, bin: bin, args: []string{"server", "--data", t.TempDir(), "--http", httpAddr, "--otlp-grpc", otlpAddr,
		"--otlp-http", "", "--sw-grpc", "", "--sw-http", "", "--memory-limit", "0",
		"--peers", otlpAddr + "," + other, "--peer-self", otlpAddr}, logs: &logs, httpAddr: httpAddr}
	node.start()
	t.Cleanup(node.kill)

	if err := node.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-node.exited:
		node.cmd = nil
		t.Fatalf("the node exited on SIGHUP: %v\n%s", err, tail(logs.String()))
	case <-time.After(time.Second):
	}
	if err := node.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-node.exited:
		node.cmd = nil
		if err != nil {
			t.Errorf("the node's exit after SIGTERM: %v\n%s", err, tail(logs.String()))
		}
		if !strings.Contains(logs.String(), "storage flushed and closed") {
			t.Errorf("no clean shutdown in the log:\n%s", tail(logs.String()))
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("the node did not stop within 40 s of SIGTERM\n%s", tail(logs.String()))
	}
}
