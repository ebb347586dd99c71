package analysis

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/analysis/instances"
)

// InstanceView is an instance with its figures over the asked range.
type InstanceView struct {
	instances.Instance
	Figures *Figures `json:"figures,omitempty"`
}

// Instances is a service's instances with liveness, duplicates and figures.
type Instances struct {
	Service string `json:"service"`
	// AliveTimeout is how long after its last sign of life an instance
	// counts as alive.
	AliveTimeout string         `json:"aliveTimeout"`
	Instances    []InstanceView `json:"instances"`
}

// Instances lists service's instances as the registry knows them, with
// their figures over [start, end]; instances with figures the registry no
// longer (or never) held, such as "<overflow>", are listed too.
func (a *Analyser) Instances(ctx context.Context, service string, start, end time.Time) (*Instances, error) {
	figs, err := a.figures(ctx, "skytrail_instance_", []string{"instance"}, "service="+quote(service), true, start, end)
	if err != nil {
		return nil, err
	}
	list := a.registry.List(service, a.now())
	out := &Instances{Service: service, AliveTimeout: a.registry.AliveTimeout().String(), Instances: make([]InstanceView, 0, len(list))}
	for _, inst := range list {
		out.Instances = append(out.Instances, InstanceView{Instance: inst, Figures: figs[inst.Name]})
		delete(figs, inst.Name)
	}
	for name, f := range figs {
		out.Instances = append(out.Instances, InstanceView{Instance: instances.Instance{Service: service, Name: name}, Figures: f})
	}
	return out, nil
}

// AllInstances is Instances for every service at once, in one query of
// the figures: the instances page of a server with hundreds of services.
// Service is empty; each instance names its own.
func (a *Analyser) AllInstances(ctx context.Context, start, end time.Time) (*Instances, error) {
	by := []string{"service", "instance"}
	figs, err := a.figures(ctx, "skytrail_instance_", by, `service!=""`, true, start, end)
	if err != nil {
		return nil, err
	}
	now := a.now()
	out := &Instances{AliveTimeout: a.registry.AliveTimeout().String(), Instances: []InstanceView{}}
	for _, service := range a.registry.Services() {
		for _, inst := range a.registry.List(service, now) {
			k := service + "\x00" + inst.Name
			out.Instances = append(out.Instances, InstanceView{Instance: inst, Figures: figs[k]})
			delete(figs, k)
		}
	}
	for k, f := range figs {
		service, name, _ := strings.Cut(k, "\x00")
		out.Instances = append(out.Instances, InstanceView{Instance: instances.Instance{Service: service, Name: name}, Figures: f})
	}
	return out, nil
}

// EndpointView is an endpoint with its figures over the asked range.
type EndpointView struct {
	Name    string  `json:"name"`
	Figures Figures `json:"figures"`
}

// Endpoints is a service's endpoints (entry span names) with figures.
type Endpoints struct {
	Service   string         `json:"service"`
	Endpoints []EndpointView `json:"endpoints"`
	// EndpointCap is the per-service endpoint cap; Overflowed tells whether
	// it was reached (the rest count under "<overflow>").
	EndpointCap int  `json:"endpointCap"`
	Overflowed  bool `json:"overflowed"`
}

// Endpoints lists service's endpoints with their figures over [start, end],
// busiest first.
func (a *Analyser) Endpoints(ctx context.Context, service string, start, end time.Time) (*Endpoints, error) {
	figs, err := a.figures(ctx, "skytrail_endpoint_", []string{"endpoint"}, "service="+quote(service), true, start, end)
	if err != nil {
		return nil, err
	}
	out := &Endpoints{Service: service, Endpoints: make([]EndpointView, 0, len(figs)), EndpointCap: a.cfg.MaxEndpointsPerService}
	for name, f := range figs {
		out.Endpoints = append(out.Endpoints, EndpointView{Name: name, Figures: *f})
	}
	sort.Slice(out.Endpoints, func(i, j int) bool {
		ei, ej := out.Endpoints[i], out.Endpoints[j]
		if ei.Figures.Calls != ej.Figures.Calls {
			return ei.Figures.Calls > ej.Figures.Calls
		}
		return ei.Name < ej.Name
	})
	_, out.Overflowed = figs[Overflow]
	return out, nil
}
