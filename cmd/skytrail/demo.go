package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/skytrail/skytrail/internal/demo"
	"github.com/skytrail/skytrail/internal/server"
)

// runDemo runs `skytrail demo`: the server, with the server's flags, and the
// example shop sending it traces until Ctrl-C. Its data goes to a directory
// of its own under the system's temporary directory unless --data says
// otherwise, and it logs warnings only, so the guide it prints stays
// readable.
func runDemo(ctx context.Context, args []string) error {
	cfg := server.Defaults()
	cfg.DataDir = filepath.Join(os.TempDir(), "skytrail-demo")
	// The shop's spans all arrive within a second or two of ending: an HTTP
	// call no instrumented server answers waits 5 s for a server span rather
	// than 30 before it becomes an edge to a virtual node, and minutes are
	// written soon after they end (the server's defaults allow for slow
	// exporters). Figures show as spans arrive either way.
	cfg.Analysis.JoinGrace = 5 * time.Second
	cfg.Analysis.FlushDelay = 10 * time.Second
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	configFile, logLevel := serverFlags(fs, &cfg)
	fs.Lookup("log-level").DefValue = "warn"
	*logLevel = "warn"
	rps := fs.Float64("rps", 5, "requests a second the demo's customers send, on average (two product pages for each checkout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnvAndFile(fs, *configFile); err != nil {
		return err
	}
	if *rps <= 0 || *rps > 1000 {
		return fmt.Errorf("--rps %g: want more than 0 and at most 1000", *rps)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(cfg.Logger)
	return demo.Run(ctx, demo.Config{Server: cfg, RPS: *rps, Out: os.Stdout})
}
