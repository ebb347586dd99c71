package swconv

import (
	"fmt"
	"time"

	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// Protocol is the pipeline.Heartbeat protocol of SkyWalking agents.
const Protocol = "skywalking"

// PropertiesHeartbeat turns reportInstanceProperties into a heartbeat that
// carries the instance's properties ("Process No.", "hostname", "language",
// "OS Name", "ipv4", ...; a repeated key keeps its values joined by ", ").
func PropertiesHeartbeat(p *managementv3.InstanceProperties, at time.Time) (pipeline.Heartbeat, error) {
	if err := checkInstance("instance properties", p.GetService(), p.GetServiceInstance()); err != nil {
		return pipeline.Heartbeat{}, err
	}
	props := make(map[string]string, len(p.Properties))
	for _, kv := range p.Properties {
		if kv == nil {
			continue
		}
		if old, ok := props[kv.Key]; ok {
			props[kv.Key] = old + ", " + kv.Value
			continue
		}
		props[kv.Key] = kv.Value
	}
	return pipeline.Heartbeat{
		Service: p.Service, Instance: p.ServiceInstance, Layer: p.Layer,
		Properties: props, Protocol: Protocol, At: at,
	}, nil
}

// KeepAliveHeartbeat turns a keepAlive ping into a heartbeat without properties.
func KeepAliveHeartbeat(p *managementv3.InstancePingPkg, at time.Time) (pipeline.Heartbeat, error) {
	if err := checkInstance("keepAlive", p.GetService(), p.GetServiceInstance()); err != nil {
		return pipeline.Heartbeat{}, err
	}
	return pipeline.Heartbeat{
		Service: p.Service, Instance: p.ServiceInstance, Layer: p.Layer,
		Protocol: Protocol, At: at,
	}, nil
}

func checkInstance(what, service, instance string) error {
	switch {
	case service == "":
		return fmt.Errorf("%s of instance %q has no service", what, instance)
	case instance == "":
		return fmt.Errorf("%s of service %q has no serviceInstance", what, service)
	}
	return nil
}
