// Package instances keeps the instance registry: every service instance
// seen in OTLP resources or SkyWalking keep-alives, when it was first and
// last seen, what it reported about itself, and which instances are the
// same process, or the same program restarted, under different IDs.
package instances

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// Config bounds the registry.
type Config struct {
	// AliveTimeout is how long after its last sign of life an instance
	// counts as alive (default 90 s; go2sky pings every 20-30 s).
	AliveTimeout time.Duration
	// Forget drops instances silent for this long (default 7 days).
	Forget time.Duration
	// MaxPerService caps instances kept per service (default 1000); more
	// are counted in Overflow and not kept.
	MaxPerService int
	// MaxServices caps the services kept (default 10000).
	MaxServices int
}

func (c *Config) defaults() {
	if c.AliveTimeout <= 0 {
		c.AliveTimeout = 90 * time.Second
	}
	if c.Forget <= 0 {
		c.Forget = 7 * 24 * time.Hour
	}
	if c.MaxPerService <= 0 {
		c.MaxPerService = 1000
	}
	if c.MaxServices <= 0 {
		c.MaxServices = 10_000
	}
}

// Instance is one service instance as the registry knows it.
type Instance struct {
	Service    string            `json:"service"`
	Name       string            `json:"name"`
	Protocol   string            `json:"protocol"`
	Layer      string            `json:"layer,omitempty"`
	FirstSeen  time.Time         `json:"firstSeen"`
	LastSeen   time.Time         `json:"lastSeen"`
	Alive      bool              `json:"alive"`
	Host       string            `json:"host,omitempty"`
	PID        string            `json:"pid,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	// SameProcessAs lists other instance IDs reported by the same host and
	// process while this one was alive: one program, several identities.
	SameProcessAs []string `json:"sameProcessAs,omitempty"`
	// DuplicateOf is the instance this one replaced: the same host (and
	// process, or a restarted one) reporting under a new instance ID after
	// the old one fell silent. DuplicateReason says which.
	DuplicateOf     string `json:"duplicateOf,omitempty"`
	DuplicateReason string `json:"duplicateReason,omitempty"`
}

// Property names that identify the process behind an instance, in OTLP
// resources and in SkyWalking's instance properties.
var (
	hostKeys = []string{"host.name", "hostname", "host.id"}
	pidKeys  = []string{"process.pid", "Process No."}
)

// Registry is safe for concurrent use.
type Registry struct {
	cfg      Config
	mu       sync.Mutex
	services map[string]map[string]*Instance
	// Overflow counts heartbeats of instances not kept (caps reached).
	overflow uint64
}

// New returns an empty registry.
func New(cfg Config) *Registry {
	cfg.defaults()
	return &Registry{cfg: cfg, services: map[string]map[string]*Instance{}}
}

// AliveTimeout is the configured alive timeout.
func (r *Registry) AliveTimeout() time.Duration { return r.cfg.AliveTimeout }

// ConsumeHeartbeat records a sign of life; with properties it also replaces
// what the instance said about itself.
func (r *Registry) ConsumeHeartbeat(_ context.Context, hb pipeline.Heartbeat) error {
	if hb.Service == "" || hb.Instance == "" {
		return fmt.Errorf("heartbeat without service or instance (service %q, instance %q)", hb.Service, hb.Instance)
	}
	at := hb.At
	if at.IsZero() {
		at = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inst := r.lookup(hb.Service, hb.Instance, at)
	if inst == nil {
		return nil
	}
	if at.After(inst.LastSeen) {
		inst.LastSeen = at
	}
	if hb.Protocol != "" {
		inst.Protocol = hb.Protocol
	}
	if hb.Layer != "" {
		inst.Layer = hb.Layer
	}
	if hb.Properties != nil {
		inst.Properties = maps.Clone(hb.Properties)
		inst.Host, inst.PID = first(hb.Properties, hostKeys), first(hb.Properties, pidKeys)
	}
	return nil
}

// Touch records a sign of life of a known instance. It returns false when
// the instance is unknown, so the caller sends a full heartbeat.
func (r *Registry) Touch(service, instance string, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	inst := r.services[service][instance]
	if inst == nil {
		return false
	}
	if at.After(inst.LastSeen) {
		inst.LastSeen = at
	}
	return true
}

// lookup finds or creates an instance; nil when a cap forbids creating it.
func (r *Registry) lookup(service, instance string, at time.Time) *Instance {
	insts := r.services[service]
	if insts == nil {
		if len(r.services) >= r.cfg.MaxServices {
			r.overflow++
			return nil
		}
		insts = map[string]*Instance{}
		r.services[service] = insts
	}
	inst := insts[instance]
	if inst == nil {
		if len(insts) >= r.cfg.MaxPerService {
			r.overflow++
			return nil
		}
		inst = &Instance{Service: service, Name: instance, FirstSeen: at, LastSeen: at}
		insts[instance] = inst
	}
	return inst
}

func first(props map[string]string, keys []string) string {
	for _, k := range keys {
		if v := props[k]; v != "" {
			return v
		}
	}
	return ""
}

// Overflow is the number of heartbeats dropped by the caps.
func (r *Registry) Overflow() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overflow
}

// Len is the number of instances kept.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, insts := range r.services {
		n += len(insts)
	}
	return n
}

// Services lists the services with instances, sorted.
func (r *Registry) Services() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.services))
}

// List returns a service's instances as of now, oldest first, with their
// liveness and duplicates worked out.
func (r *Registry) List(service string, now time.Time) []Instance {
	r.mu.Lock()
	list := make([]Instance, 0, len(r.services[service]))
	for _, inst := range r.services[service] {
		c := *inst
		c.Properties = maps.Clone(inst.Properties)
		list = append(list, c)
	}
	r.mu.Unlock()
	slices.SortFunc(list, func(a, b Instance) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.Name, b.Name))
	})
	for i := range list {
		list[i].Alive = now.Sub(list[i].LastSeen) <= r.cfg.AliveTimeout
	}
	r.markDuplicates(list)
	return list
}

// markDuplicates compares instances of one service on the same host. Two
// with the same process ID whose lifetimes overlap are one process under
// two names. A later one that started after an earlier one fell silent is
// that program restarted under a new ID (SkyWalking agents that name
// instances UUID@address do this on every restart).
func (r *Registry) markDuplicates(list []Instance) {
	for i := range list {
		a := &list[i]
		if a.Host == "" {
			continue
		}
		for j := range i {
			b := &list[j] // b was first seen before a
			if b.Host != a.Host {
				continue
			}
			overlap := !b.LastSeen.Add(r.cfg.AliveTimeout).Before(a.FirstSeen)
			switch {
			case overlap && a.PID != "" && a.PID == b.PID:
				a.SameProcessAs = append(a.SameProcessAs, b.Name)
				b.SameProcessAs = append(b.SameProcessAs, a.Name)
				if a.DuplicateOf == "" {
					a.DuplicateOf = b.Name
					a.DuplicateReason = fmt.Sprintf("same process (host %s, pid %s) reporting under another instance ID", a.Host, a.PID)
				}
			case !overlap:
				// The latest earlier instance wins: a chain of restarts
				// points each one at the one it replaced.
				a.DuplicateOf = b.Name
				a.DuplicateReason = fmt.Sprintf("restarted under a new instance ID on host %s: %s fell silent at %s, this one started at %s",
					a.Host, b.Name, b.LastSeen.UTC().Format(time.RFC3339), a.FirstSeen.UTC().Format(time.RFC3339))
			}
		}
	}
}

// Prune forgets instances silent for longer than the Forget period.
func (r *Registry) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for svc, insts := range r.services {
		for name, inst := range insts {
			if now.Sub(inst.LastSeen) > r.cfg.Forget {
				delete(insts, name)
			}
		}
		if len(insts) == 0 {
			delete(r.services, svc)
		}
	}
}

// Save writes the registry to path (through a temporary file, so a crash
// leaves the previous copy), for Load after a restart.
func (r *Registry) Save(path string) error {
	r.mu.Lock()
	var all []*Instance
	for _, insts := range r.services {
		for _, inst := range insts {
			all = append(all, inst)
		}
	}
	data, err := json.Marshal(all)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding the instance registry: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("saving the instance registry: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving the instance registry: %w", err)
	}
	return nil
}

// Load reads what Save wrote; a missing file is an empty registry.
func (r *Registry) Load(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading the instance registry: %w", err)
	}
	var all []*Instance
	if err := json.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("loading the instance registry from %s: %w", path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inst := range all {
		if inst.Service == "" || inst.Name == "" {
			continue
		}
		if kept := r.lookup(inst.Service, inst.Name, inst.FirstSeen); kept != nil {
			inst.Alive, inst.SameProcessAs, inst.DuplicateOf, inst.DuplicateReason = false, nil, "", ""
			*kept = *inst
		}
	}
	return nil
}
