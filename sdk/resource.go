package sdk

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Version is this SDK's version, reported as telemetry.distro.version.
const Version = "0.1.0"

// instanceNamespace is the UUID namespace OpenTelemetry's semantic
// conventions give for deriving service.instance.id as a version 5 UUID.
var instanceNamespace = [16]byte{0x4d, 0x63, 0x00, 0x9a, 0x8d, 0x0f, 0x11, 0xee, 0xaa, 0xd7, 0x4c, 0x79, 0x6e, 0xd8, 0xe3, 0x20}

// newResource describes the service: service.name and service.instance.id
// as resolved below, host, OS, process (not its arguments, which may hold
// secrets) and SDK attributes, OTEL_RESOURCE_ATTRIBUTES, then the options.
func newResource(ctx context.Context, c *config) (*resource.Resource, error) {
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("skytrail sdk: reading OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	name := c.serviceName
	if name == "" {
		if v, ok := env.Set().Value(semconv.ServiceNameKey); ok {
			name = v.AsString()
		}
	}
	if name == "" {
		name = "unknown_service:" + filepath.Base(os.Args[0])
	}
	instance := c.instanceID
	if instance == "" {
		if v, ok := env.Set().Value(semconv.ServiceInstanceIDKey); ok {
			instance = v.AsString()
		}
	}
	if instance == "" {
		instance = deriveInstanceID(name)
	}

	attrs := []attribute.KeyValue{
		semconv.TelemetryDistroName("skytrail-sdk"),
		semconv.TelemetryDistroVersion(Version),
	}
	if c.serviceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(c.serviceVersion))
	}
	attrs = append(attrs, c.attributes...)
	attrs = append(attrs, semconv.ServiceName(name), semconv.ServiceInstanceID(instance))

	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithOSType(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessExecutablePath(),
		resource.WithProcessOwner(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithFromEnv(),
		resource.WithAttributes(attrs...),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		// A detector failed (say, no user name in a scratch container): keep
		// the rest rather than refuse to start tracing.
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("skytrail sdk: describing the service: %w", err)
	}
	return res, nil
}

// deriveInstanceID returns a version 5 UUID of what identifies a deployment
// slot on this host: host name, service name, executable, working directory
// and arguments. A restart of the same slot gets the same ID, so SkyTrail
// shows one instance coming back rather than a stranger; two slots differ in
// at least one input (or must be told apart with WithServiceInstanceID).
func deriveInstanceID(service string) string {
	host, _ := os.Hostname()
	exe, _ := os.Executable()
	wd, _ := os.Getwd()
	name := strings.Join([]string{host, service, exe, wd, strings.Join(os.Args[1:], "\x00")}, "\n")
	return uuidV5(instanceNamespace, name)
}

// uuidV5 implements RFC 9562 section 5.5: SHA-1 of namespace and name, with
// version and variant bits set.
func uuidV5(namespace [16]byte, name string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
