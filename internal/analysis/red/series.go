package red

// The series SkyTrail writes; docs/metrics.md describes each. Every family
// (services, instances, endpoints, each side of a service-map edge) has two
// shapes of the same figures:
//
//   - per minute, named <prefix><field>:increase1m: what the minute ending
//     at the sample's timestamp added, counted by the minute a span started
//     in. Exact sums over whole minutes with sum_over_time; what SkyTrail's
//     own JSON API and UI read.
//   - running totals, named <prefix><field>_total and <prefix>duration_seconds
//     (a counter native histogram): counters since the server started,
//     counted when a span arrives, written every few seconds. What rate(),
//     increase() and histogram_quantile() expect.
//
// The names follow Prometheus' conventions: a counter ends in _total, and a
// per-interval series derived from one is named like a recording rule,
// metric:operation, so `rate(skytrail_service_calls:increase1m[5m])` reads
// as the mistake it is (and the engine says so in an annotation).

// MinuteSuffix ends the name of every per-minute series.
const MinuteSuffix = ":increase1m"

// Field is one figure of a series.
type Field int

// The figures of a series.
const (
	FieldCalls Field = iota
	FieldErrors
	FieldSatisfied  // Apdex: successful calls within T
	FieldTolerating // Apdex: successful calls within 4T, above T
	FieldDuration   // the latency histogram
)

var fieldNames = [...]string{"calls", "errors", "apdex_satisfied", "apdex_tolerating", "duration_seconds"}

// Def is one series name: the family and figure it holds, and its shape.
type Def struct {
	Name   string
	Family *Family
	Field  Field
	// Counter tells a running total from a per-minute figure.
	Counter bool
}

// Histogram tells whether the series holds native histograms.
func (d *Def) Histogram() bool { return d.Field == FieldDuration }

// Value is the float figure d reads from s (not for the histogram).
func (d *Def) Value(s *Stats) float64 {
	switch d.Field {
	case FieldCalls:
		return float64(s.Calls)
	case FieldErrors:
		return float64(s.Errors)
	case FieldSatisfied:
		return float64(s.Satisfied)
	case FieldTolerating:
		return float64(s.Tolerating)
	}
	return 0
}

// Family is a kind of series and the labels that tell its series apart.
type Family struct {
	// Prefix starts every name of the family, e.g. "skytrail_service_".
	Prefix string
	// Apdex tells whether the family counts Apdex outcomes (edges do not).
	Apdex bool
	// Minute and Counters are the family's per-minute and running-total
	// series.
	Minute, Counters []*Def
	// labels are the names of the first two label values kv takes.
	labels [2]string
}

// kv appends the label pairs of a service, instance or endpoint series to
// buf: service a, and b under the family's second label.
func (f *Family) kv(buf []string, a, b string) []string {
	buf = append(buf, f.labels[0], a)
	if f.labels[1] != "" {
		buf = append(buf, f.labels[1], b)
	}
	return buf
}

// edgeKV appends an edge's label pairs to buf.
func edgeKV(buf []string, k Edge) []string {
	buf = append(buf, "client", k.Client, "server", k.Server, "client_type", k.ClientType, "server_type", k.ServerType)
	if k.System != "" {
		buf = append(buf, "system", k.System)
	}
	return buf
}

// The families.
var (
	ServiceFamily    = newFamily("skytrail_service_", true, "service", "")
	InstanceFamily   = newFamily("skytrail_instance_", true, "service", "instance")
	EndpointFamily   = newFamily("skytrail_endpoint_", true, "service", "endpoint")
	EdgeClientFamily = newFamily("skytrail_edge_client_", false, "", "")
	EdgeServerFamily = newFamily("skytrail_edge_server_", false, "", "")
	// Families lists them all.
	Families = []*Family{ServiceFamily, InstanceFamily, EndpointFamily, EdgeClientFamily, EdgeServerFamily}
)

func newFamily(prefix string, apdex bool, label0, label1 string) *Family {
	f := &Family{Prefix: prefix, Apdex: apdex, labels: [2]string{label0, label1}}
	for i, field := range fieldNames {
		if !apdex && (Field(i) == FieldSatisfied || Field(i) == FieldTolerating) {
			continue
		}
		minute := &Def{Name: prefix + field + MinuteSuffix, Family: f, Field: Field(i)}
		counter := &Def{Name: prefix + field + "_total", Family: f, Field: Field(i), Counter: true}
		if Field(i) == FieldDuration {
			counter.Name = prefix + field
		}
		f.Minute = append(f.Minute, minute)
		f.Counters = append(f.Counters, counter)
	}
	return f
}

// MinuteName is the name of the per-minute series of field in the family
// with prefix, e.g. MinuteName("skytrail_service_", FieldCalls) is
// skytrail_service_calls:increase1m.
func MinuteName(prefix string, field Field) string { return prefix + fieldNames[field] + MinuteSuffix }

// Defs calls fn for every series name.
func Defs(fn func(*Def)) {
	for _, f := range Families {
		for _, d := range f.Minute {
			fn(d)
		}
		for _, d := range f.Counters {
			fn(d)
		}
	}
}

// CounterHistograms are the names of the counter native histograms, whose
// classic _bucket, _count and _sum series the metric store derives.
func CounterHistograms() []string {
	var out []string
	for _, f := range Families {
		for _, d := range f.Counters {
			if d.Histogram() {
				out = append(out, d.Name)
			}
		}
	}
	return out
}
