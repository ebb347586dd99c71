package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// ANSI colours, used only on a terminal.
const (
	reset  = "\033[0m"
	bold   = "\033[1m"
	red    = "\033[31m"
	green  = "\033[32m"
	yellow = "\033[33m"
	cyan   = "\033[36m"
)

var marks = map[Status]struct{ sym, colour string }{
	StatusOK:   {"✓", green},
	StatusInfo: {"i", cyan},
	StatusWarn: {"!", yellow},
	StatusFail: {"✗", red},
}

// WriteText writes the report for people, in colour when colour is set.
func (r *Report) WriteText(w io.Writer, colour bool) error {
	paint := func(c, s string) string {
		if !colour {
			return s
		}
		return c + s + reset
	}
	var b strings.Builder
	title := "skytrail doctor"
	if r.Service != "" {
		title += ": " + r.Service
	}
	fmt.Fprintln(&b, paint(bold, title))
	step := ""
	for _, c := range r.Checks {
		if c.Step != step {
			step = c.Step
			fmt.Fprintln(&b, "\n"+paint(bold, step))
		}
		m := marks[c.Status]
		name := c.Name
		if c.Target != "" && c.Step != stepFindings {
			name += " " + c.Target
		}
		fmt.Fprintf(&b, "  %s %s: %s", paint(m.colour, m.sym), name, c.Detail)
		if c.TraceID != "" {
			fmt.Fprintf(&b, " [trace %s]", c.TraceID)
		}
		if c.Millis > 0 {
			fmt.Fprintf(&b, " (%.1f ms)", c.Millis)
		}
		b.WriteByte('\n')
		if c.Remedy != "" && c.Status != StatusOK {
			fmt.Fprintf(&b, "      %s %s\n", paint(m.colour, "fix:"), c.Remedy)
		}
	}
	b.WriteByte('\n')
	var silent []string
	for _, c := range r.Checks {
		if c.Step == stepFindings && c.Status == StatusFail {
			silent = append(silent, c.Detail)
		}
	}
	if n := r.Failed() - len(silent); n > 0 {
		fmt.Fprintln(&b, paint(red+bold, fmt.Sprintf("The path to SkyTrail is broken: %d check(s) failed.", n)))
	} else if len(silent) > 0 {
		// The probes arrived; the service's own spans do not.
		msg := "The path to SkyTrail works, but " + strings.Join(silent, "; ")
		if !strings.HasSuffix(msg, "?") {
			msg += "."
		}
		fmt.Fprintln(&b, paint(red+bold, msg))
	} else {
		fmt.Fprintln(&b, paint(green+bold, "The path to SkyTrail works."))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report for scripts.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
