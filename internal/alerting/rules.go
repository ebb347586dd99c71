package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
)

// DefaultRulesFile is the name the built-in rules go by in the rules API
// and in errors; no such file exists.
const DefaultRulesFile = "<built-in>/skytrail-default-rules.yml"

// loader gives the rules engine the built-in rules from memory and every
// other rule file from disk.
type loader struct {
	builtin []byte
	parser  parser.Parser
	logger  *slog.Logger
}

func (l *loader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	if identifier == DefaultRulesFile {
		rgs, errs := rulefmt.Parse(l.builtin, ignoreUnknownFields, scheme, l.parser, l.logger)
		for i := range errs {
			errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
		}
		return rgs, errs
	}
	return rulefmt.ParseFile(identifier, ignoreUnknownFields, scheme, l.parser, l.logger)
}

func (l *loader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// expandRuleFiles turns the configured files and globs into file names,
// sorted and without repeats. A plain name that does not exist is an error;
// a glob matching nothing is not (a directory of rules may be empty).
func expandRuleFiles(patterns []string) ([]string, error) {
	var files []string
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.ContainsAny(p, "*?[") {
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("rule file %s: %w", p, err)
			}
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("rule file pattern %q: %w", p, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// checkRuleFiles parses every file as the rules engine will, and returns
// all their errors: each names the file, the line and column, the group
// and rule, and what is wrong.
func (l *loader) check(files []string) error {
	var errs []error
	for _, f := range files {
		rgs, fileErrs := l.Load(f, false, model.UTF8Validation)
		errs = append(errs, fileErrs...)
		if len(fileErrs) > 0 || rgs == nil {
			continue
		}
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if _, err := l.Parse(r.Expr); err != nil {
					errs = append(errs, fmt.Errorf("%s: group %q, rule %q: %w", f, g.Name, r.Alert+r.Record, err))
				}
			}
		}
	}
	if len(errs) > 0 {
		return &RuleFileError{Errs: errs}
	}
	return nil
}

// RuleFileError is what loading bad rule files fails with: every problem
// found, each naming its file, line and reason.
type RuleFileError struct{ Errs []error }

func (e *RuleFileError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "bad rule file: " + strings.Join(msgs, "; ")
}

func (e *RuleFileError) Unwrap() []error { return e.Errs }

// seriesCap wraps the engine's query function: a rule whose expression
// yields more series than max fails that evaluation with an error saying
// so (shown as the rule's last error) instead of writing or alerting on all
// of them. One per-endpoint rule over an endpoint explosion would otherwise
// add that many series to the TSDB, and alerts to memory, every interval.
type seriesCap struct {
	query rules.QueryFunc
	max   int
	hit   func(expr string, n int)
}

func (c seriesCap) run(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
	v, err := c.query(ctx, q, t)
	if err != nil || c.max <= 0 || len(v) <= c.max {
		return v, err
	}
	c.hit(q, len(v))
	return nil, fmt.Errorf("%w: the expression gave %d series, over the %d one rule may produce (--rules-max-series); nothing of this evaluation was recorded or alerted on: aggregate it by fewer labels, or raise the cap", ErrSeriesCap, len(v), c.max)
}

// ErrSeriesCap is what a rule's evaluation fails with when its expression
// gives more series than Config.MaxSeriesPerRule.
var ErrSeriesCap = errors.New("series cap reached")

// capLog logs a rule hitting the series cap once every ten minutes per
// expression, so a rule stuck over it does not flood the log.
type capLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (c *capLog) due(expr string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]time.Time{}
	}
	if t, ok := c.last[expr]; ok && now.Sub(t) < 10*time.Minute {
		return false
	}
	c.last[expr] = now
	return true
}
