package doctor

import "testing"

// TestResolveOTLP follows the exporters' rules for endpoints.
func TestResolveOTLP(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "http://localhost:4317"},
		{Config{OTLPProtocol: ProtocolHTTP}, "http://localhost:4318/v1/traces"},
		{Config{OTLPEndpoint: "collector:4317"}, "https://collector:4317"},
		{Config{OTLPEndpoint: "collector:4317", OTLPInsecure: true}, "http://collector:4317"},
		{Config{OTLPEndpoint: "http://collector:4318/base/", OTLPProtocol: ProtocolHTTP}, "http://collector:4318/base/v1/traces"},
		{Config{OTLPEndpoint: "http://collector:4318/custom", TracesEndpoint: true, OTLPProtocol: ProtocolHTTP}, "http://collector:4318/custom"},
		{Config{OTLPEndpoint: "http://collector:4317/ignored"}, "http://collector:4317"},
	} {
		got, err := c.cfg.resolveOTLP()
		if err != nil {
			t.Errorf("%+v: %v", c.cfg, err)
			continue
		}
		if got.url.String() != c.want {
			t.Errorf("%+v: %s, want %s", c.cfg, got.url, c.want)
		}
	}
	for _, bad := range []Config{{OTLPProtocol: "http/json"}, {OTLPProtocol: "thrift"}, {OTLPEndpoint: "ftp://x:1"}, {OTLPEndpoint: "http://"}} {
		if _, err := bad.resolveOTLP(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestSampler names samplers that keep nothing.
func TestSampler(t *testing.T) {
	for _, c := range []struct {
		sampler, arg string
		want         Status
	}{
		{"", "", StatusOK},
		{"always_on", "", StatusOK},
		{"always_off", "", StatusFail},
		{"parentbased_always_off", "", StatusFail},
		{"traceidratio", "0", StatusFail},
		{"traceidratio", "abc", StatusFail},
		{"parentbased_traceidratio", "0.001", StatusWarn},
		{"parentbased_traceidratio", "0.5", StatusOK},
		{"jaeger_remote", "", StatusWarn},
	} {
		cfg := Config{Sampler: c.sampler, SamplerArg: c.arg}
		if got, detail := cfg.samplerProblem(); got != c.want {
			t.Errorf("%s/%s: %s (%s), want %s", c.sampler, c.arg, got, detail, c.want)
		}
	}
}
