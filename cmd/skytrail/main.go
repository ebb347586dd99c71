// Command skytrail is the SkyTrail server and its tools.
//
//	skytrail [server] [flags]   run the server (the default)
//	skytrail demo [flags]       the server beside a live example shop
//	skytrail loadgen [flags]    send load over OTLP or SkyWalking
//	skytrail doctor [flags]     check that a service's traces reach SkyTrail
//	skytrail passwd USER        a bcrypt line for --auth-users
//	skytrail version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	setEngineFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	cmd := "server"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "server":
		err = runServer(ctx, args)
	case "demo":
		err = runDemo(ctx, args)
	case "loadgen":
		err = runLoadgen(ctx, args)
	case "doctor":
		err = runDoctor(ctx, args)
	case "passwd":
		err = runPasswd(args)
	case "version":
		fmt.Println("skytrail", version)
	default:
		err = fmt.Errorf("unknown command %q: want server, demo, loadgen, doctor, passwd or version", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "skytrail:", err)
		os.Exit(1)
	}
}

// setEngineFlags sets what the VictoriaMetrics libraries under the span
// store read from Go's global flag set (spanstore.GlobalFlags says what and
// why) and marks the set parsed, as they expect. Only main touches the
// global set: SkyTrail's own flags are per subcommand.
func setEngineFlags() {
	for name, value := range spanstore.GlobalFlags {
		if err := flag.Set(name, value); err != nil {
			panic(fmt.Sprintf("setting the storage engine's flag %s=%s: %v", name, value, err))
		}
	}
	_ = flag.CommandLine.Parse(nil)
}

func runServer(ctx context.Context, args []string) error {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	configFile, logLevel := serverFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnvAndFile(fs, *configFile); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(cfg.Logger)

	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	// SIGHUP reloads the rule files and the notification configuration;
	// a bad one keeps the running one (and says why in the log).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-hup:
			srv.ReloadAlerting()
		case <-ctx.Done():
			done = true
		}
	}
	cfg.Logger.Info("shutting down: finishing in-flight requests, then flushing storage")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// applyEnvAndFile fills every flag not given on the command line from its
// environment twin (SKYTRAIL_ + the name in upper case, dashes as
// underscores), else from the YAML file: flags win over the environment,
// which wins over the file.
func applyEnvAndFile(fs *flag.FlagSet, file string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if file == "" && !given["config"] {
		file = os.Getenv("SKYTRAIL_CONFIG")
	}
	fromFile := map[string]any{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &fromFile); err != nil {
			return fmt.Errorf("parse config file %s: %w", file, err)
		}
		for k := range fromFile {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown setting %q", file, k)
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == "config" {
			return
		}
		env := "SKYTRAIL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if list, ok := v.([]any); ok { // a list setting (rules: [a.yml, b.yml])
				for _, item := range list {
					if err := f.Value.Set(fmt.Sprint(item)); err != nil {
						errs = append(errs, fmt.Errorf("config %s: %q: %w", f.Name, item, err))
					}
				}
				return
			}
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %q: %w", f.Name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}
