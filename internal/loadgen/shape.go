package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// This file decides what the generated traffic looks like, independent of the
// wire protocol: a small shop of four services (frontend -> order ->
// inventory, payment) whose requests touch MySQL, Redis and Kafka. The OTLP
// and SkyWalking encoders both render the same planned traces, so the two
// ingest paths are measured on the same shapes.

// spanKind is the role of a span in its trace, in OpenTelemetry's terms.
// SkyWalking's Entry/Exit/Local follow from it (server=Entry,
// client/producer=Exit, internal=Local).
type spanKind uint8

const (
	kindServer spanKind = iota
	kindClient
	kindInternal
	kindProducer
)

// layer is SkyWalking's span layer; OTLP carries the same fact in attributes
// (db.system, messaging.system, http.*).
type layer uint8

const (
	layerUnknown layer = iota
	layerDatabase
	layerHTTP
	layerMQ
	layerCache
)

// SkyWalking component IDs from apache/skywalking's component-libraries.yml.
const (
	componentUnknown       = 0
	componentRedis         = 7
	componentKafkaProducer = 40
	componentGoHTTPServer  = 5004
	componentGoHTTPClient  = 5005
	componentGoMysql       = 5012
)

// attr is one span attribute. swKey is the tag name a SkyWalking agent would
// use for the same fact; empty means the OpenTelemetry key is used as is.
type attr struct {
	key   string
	swKey string
	str   string
	num   int64
	isNum bool
}

func strAttr(key, swKey, v string) attr { return attr{key: key, swKey: swKey, str: v} }
func numAttr(key, swKey string, v int64) attr {
	return attr{key: key, swKey: swKey, num: v, isNum: true}
}

// text is the attribute's value as a string (SkyWalking tags are strings).
func (a attr) text() string {
	if a.isNum {
		return strconv.FormatInt(a.num, 10)
	}
	return a.str
}

type event struct {
	name  string
	at    int64 // ns after the trace starts
	attrs []attr
}

// instance is one running copy of a service: what OTLP puts in the resource
// and SkyWalking in service / serviceInstance.
type instance struct {
	service string
	id      string // service.instance.id, SkyWalking's serviceInstance
	host    string
	pid     int64
}

type plannedSpan struct {
	inst      *instance
	parent    int // index in plannedTrace.spans; -1 for the root
	kind      spanKind
	layer     layer
	component int32
	scope     string // instrumentation library (OTLP scope name)
	name      string
	peer      string // address the client used, on client/producer spans
	start     int64  // ns after the trace starts
	end       int64
	attrs     []attr
	events    []event
	errMsg    string // non-empty marks the span as failed
}

// plannedTrace lists spans parents-first, so a span's parent always has a
// smaller index.
type plannedTrace struct {
	spans []plannedSpan
}

// app is one copy of the shop; services missing from a small --services
// setting are nil and the calls to them are left out.
type app struct {
	frontend, order, inventory, payment []*instance
}

// instancesPerService gives every service a few instances so per-instance
// views have something to show.
const instancesPerService = 3

var roleNames = [4]string{"frontend", "order", "inventory", "payment"}

// newApps spreads n services over copies of the shop: the first copy's
// services are named frontend, order, inventory, payment; further copies
// get a "-2", "-3", ... suffix.
func newApps(n int, rng *rand.Rand) []app {
	var apps []app
	for made := 0; made < n; {
		a := app{}
		roles := [4]*[]*instance{&a.frontend, &a.order, &a.inventory, &a.payment}
		for r := 0; r < len(roles) && made < n; r++ {
			name := roleNames[r]
			if len(apps) > 0 {
				name += "-" + strconv.Itoa(len(apps)+1)
			}
			for i := 0; i < instancesPerService; i++ {
				*roles[r] = append(*roles[r], &instance{
					service: name,
					id:      fmt.Sprintf("%s-%08x@10.0.%d.%d", name, rng.Uint32(), len(apps)%250, 10+r*10+i),
					host:    fmt.Sprintf("%s-%d", name, i),
					pid:     int64(1000 + rng.IntN(30000)),
				})
			}
			made++
		}
		apps = append(apps, a)
	}
	return apps
}

// planner builds realistic traces. It is not safe for concurrent use.
type planner struct {
	rng       *rand.Rand
	apps      []app
	errorRate float64

	t        plannedTrace
	children [][]int
	userID   string
	orderID  string
	sku      string
}

// newPlanner plans traces over the services' instances; the seed varies the
// traces only. The instances depend on the number of services alone, so the
// planners of one run (one per pre-encoded request) and every batch of a
// benchmark report from the same instancesPerService copies of each service,
// as a running system does, not from a fresh set per request.
func newPlanner(services int, seed uint64) *planner {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	apps := newApps(services, rand.New(rand.NewPCG(uint64(services), 0x5eed)))
	return &planner{rng: rng, apps: apps, errorRate: 0.02}
}

// next plans one trace. The result is only valid until the next call.
func (p *planner) next() *plannedTrace {
	p.t.spans = p.t.spans[:0]
	p.children = p.children[:0]
	p.userID = "u-" + strconv.Itoa(1+p.rng.IntN(200000))
	p.orderID = "ord-" + strconv.FormatUint(p.rng.Uint64()>>20, 36)
	p.sku = "SKU-" + strconv.Itoa(10000+p.rng.IntN(5000))
	a := &p.apps[p.rng.IntN(len(p.apps))]

	switch x := p.rng.Float64(); {
	case x < 0.45:
		p.checkout(a)
	case x < 0.80:
		p.productPage(a)
	default:
		p.orderStatus(a)
	}
	p.layout(0, 0)
	return &p.t
}

func (p *planner) pick(insts []*instance) *instance { return insts[p.rng.IntN(len(insts))] }

func (p *planner) add(parent int, s plannedSpan) int {
	s.parent = parent
	if p.rng.Float64() < p.errorRate {
		s.errMsg = errorMessage(s.layer, s.kind, p.rng)
	}
	p.t.spans = append(p.t.spans, s)
	p.children = append(p.children, nil)
	i := len(p.t.spans) - 1
	if parent >= 0 {
		p.children[parent] = append(p.children[parent], i)
	}
	return i
}

// checkout: POST /api/checkout through all four services, about 14 spans.
func (p *planner) checkout(a *app) {
	fe := p.pick(a.frontend)
	root := p.add(-1, p.serverSpan(fe, "POST", "/api/checkout", "/api/checkout"))
	p.add(root, p.internalSpan(fe, "validate cart"))
	p.add(root, p.redisSpan(fe, "GET", "session:"+p.userID))
	if a.order == nil {
		return
	}
	ord := p.pick(a.order)
	call := p.add(root, p.httpClientSpan(fe, "POST", "order", "/orders"))
	srv := p.add(call, p.serverSpan(ord, "POST", "/orders", "/orders"))
	p.add(srv, p.mysqlSpan(ord, "INSERT", "orders",
		"INSERT INTO orders (id, user_id, sku, qty, status) VALUES (?, ?, ?, ?, 'new')"))
	if a.inventory != nil {
		inv := p.pick(a.inventory)
		c := p.add(srv, p.httpClientSpan(ord, "POST", "inventory", "/inventory/reserve"))
		s := p.add(c, p.serverSpan(inv, "POST", "/inventory/reserve", "/inventory/reserve"))
		p.add(s, p.redisSpan(inv, "DECRBY", "stock:"+p.sku))
		p.add(s, p.mysqlSpan(inv, "UPDATE", "stock",
			"UPDATE stock SET reserved = reserved + ? WHERE sku = ? AND available >= ?"))
	}
	if a.payment != nil {
		pay := p.pick(a.payment)
		c := p.add(srv, p.httpClientSpan(ord, "POST", "payment", "/payments"))
		s := p.add(c, p.serverSpan(pay, "POST", "/payments", "/payments"))
		p.add(s, p.internalSpan(pay, "fraud check"))
		p.add(s, p.mysqlSpan(pay, "INSERT", "payments",
			"INSERT INTO payments (order_id, amount, currency, status) VALUES (?, ?, ?, ?)"))
	}
	p.add(srv, p.kafkaSpan(ord, "orders.created"))
}

// productPage: GET /api/products/{sku}, cached, about 7 spans.
func (p *planner) productPage(a *app) {
	fe := p.pick(a.frontend)
	root := p.add(-1, p.serverSpan(fe, "GET", "/api/products/{sku}", "/api/products/"+p.sku))
	p.add(root, p.redisSpan(fe, "GET", "product:"+p.sku))
	if a.inventory != nil {
		inv := p.pick(a.inventory)
		c := p.add(root, p.httpClientSpan(fe, "GET", "inventory", "/inventory/"+p.sku))
		s := p.add(c, p.serverSpan(inv, "GET", "/inventory/{sku}", "/inventory/"+p.sku))
		p.add(s, p.redisSpan(inv, "HGETALL", "stock:"+p.sku))
		p.add(s, p.mysqlSpan(inv, "SELECT", "stock",
			"SELECT available, reserved, warehouse FROM stock WHERE sku = ?"))
	}
	p.add(root, p.internalSpan(fe, "render product"))
}

// orderStatus: GET /api/orders/{id}, about 6 spans.
func (p *planner) orderStatus(a *app) {
	fe := p.pick(a.frontend)
	root := p.add(-1, p.serverSpan(fe, "GET", "/api/orders/{id}", "/api/orders/"+p.orderID))
	p.add(root, p.redisSpan(fe, "GET", "session:"+p.userID))
	if a.order != nil {
		ord := p.pick(a.order)
		c := p.add(root, p.httpClientSpan(fe, "GET", "order", "/orders/"+p.orderID))
		s := p.add(c, p.serverSpan(ord, "GET", "/orders/{id}", "/orders/"+p.orderID))
		p.add(s, p.mysqlSpan(ord, "SELECT", "orders",
			"SELECT id, status, total, updated_at FROM orders WHERE id = ? AND user_id = ?"))
	}
}

func (p *planner) serverSpan(in *instance, method, route, path string) plannedSpan {
	return plannedSpan{
		inst: in, kind: kindServer, layer: layerHTTP, component: componentGoHTTPServer,
		scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		name:  method + " " + route,
		attrs: []attr{
			strAttr("http.request.method", "http.method", method),
			strAttr("http.route", "", route),
			strAttr("url.path", "url", path),
			strAttr("url.scheme", "", "http"),
			numAttr("http.response.status_code", "status_code", 200),
			strAttr("server.address", "", in.host),
			numAttr("server.port", "", 8080),
			strAttr("client.address", "", "10.0."+strconv.Itoa(p.rng.IntN(255))+"."+strconv.Itoa(p.rng.IntN(255))),
			strAttr("user_agent.original", "", "Mozilla/5.0 (X11; Linux x86_64) shop-web/3.4"),
			strAttr("user_id", "", p.userID),
			strAttr("order_id", "", p.orderID),
		},
	}
}

func (p *planner) httpClientSpan(in *instance, method, service, path string) plannedSpan {
	peer := service + ":8080"
	return plannedSpan{
		inst: in, kind: kindClient, layer: layerHTTP, component: componentGoHTTPClient,
		scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		name:  method, peer: peer,
		attrs: []attr{
			strAttr("http.request.method", "http.method", method),
			strAttr("url.full", "url", "http://"+peer+path),
			strAttr("server.address", "", service),
			numAttr("server.port", "", 8080),
			numAttr("http.response.status_code", "status_code", 200),
			strAttr("network.peer.address", "", "10.0.1."+strconv.Itoa(2+p.rng.IntN(200))),
			numAttr("network.peer.port", "", 8080),
			strAttr("network.protocol.version", "", "1.1"),
			strAttr("user_id", "", p.userID),
			strAttr("order_id", "", p.orderID),
		},
	}
}

func (p *planner) mysqlSpan(in *instance, op, table, stmt string) plannedSpan {
	return plannedSpan{
		inst: in, kind: kindClient, layer: layerDatabase, component: componentGoMysql,
		scope: "github.com/XSAM/otelsql",
		name:  op + " shop." + table, peer: "mysql:3306",
		attrs: []attr{
			strAttr("db.system", "db.type", "mysql"),
			strAttr("db.name", "db.instance", "shop"),
			strAttr("db.statement", "", stmt),
			strAttr("db.operation.name", "", op),
			strAttr("db.collection.name", "", table),
			strAttr("db.user", "", "shop_app"),
			strAttr("server.address", "", "mysql"),
			numAttr("server.port", "", 3306),
			strAttr("network.peer.address", "", "10.0.9.5"),
			numAttr("network.peer.port", "", 3306),
			strAttr("order_id", "", p.orderID),
		},
	}
}

func (p *planner) redisSpan(in *instance, cmd, key string) plannedSpan {
	hit := int64(1)
	if p.rng.IntN(5) == 0 {
		hit = 0
	}
	return plannedSpan{
		inst: in, kind: kindClient, layer: layerCache, component: componentRedis,
		scope: "github.com/redis/go-redis/extra/redisotel",
		name:  cmd, peer: "redis:6379",
		attrs: []attr{
			strAttr("db.system", "cache.type", "redis"),
			strAttr("db.statement", "cache.cmd", cmd+" "+key),
			strAttr("db.operation.name", "", cmd),
			strAttr("db.redis.key", "cache.key", key),
			numAttr("db.redis.database_index", "", 0),
			strAttr("server.address", "", "redis"),
			numAttr("server.port", "", 6379),
			strAttr("network.peer.address", "", "10.0.9.6"),
			numAttr("network.peer.port", "", 6379),
			numAttr("cache.hit", "", hit),
		},
	}
}

func (p *planner) kafkaSpan(in *instance, topic string) plannedSpan {
	return plannedSpan{
		inst: in, kind: kindProducer, layer: layerMQ, component: componentKafkaProducer,
		scope: "github.com/IBM/sarama/otelsarama",
		name:  topic + " publish", peer: "kafka:9092",
		attrs: []attr{
			strAttr("messaging.system", "", "kafka"),
			strAttr("messaging.destination.name", "mq.topic", topic),
			strAttr("messaging.operation.type", "", "publish"),
			strAttr("messaging.kafka.message.key", "", p.orderID),
			numAttr("messaging.kafka.destination.partition", "", int64(p.rng.IntN(12))),
			numAttr("messaging.message.body.size", "", int64(300+p.rng.IntN(900))),
			strAttr("server.address", "mq.broker", "kafka:9092"),
			numAttr("server.port", "", 9092),
			strAttr("network.peer.address", "", "10.0.9.7"),
			strAttr("order_id", "", p.orderID),
		},
	}
}

func (p *planner) internalSpan(in *instance, name string) plannedSpan {
	return plannedSpan{
		inst: in, kind: kindInternal, layer: layerUnknown, component: componentUnknown,
		scope: "shop/" + in.service,
		name:  name,
		attrs: []attr{
			strAttr("code.function.name", "", "shop/"+in.service+".("+name+")"),
			strAttr("code.file.path", "", "/src/shop/"+in.service+"/handler.go"),
			numAttr("code.line.number", "", int64(40+p.rng.IntN(400))),
			numAttr("thread.id", "", int64(p.rng.IntN(64))),
			numAttr("cart.items", "", int64(1+p.rng.IntN(8))),
			numAttr("cart.total_cents", "", int64(500+p.rng.IntN(50000))),
			strAttr("currency", "", "EUR"),
			strAttr("feature_flag.variant", "", [2]string{"control", "new-checkout"}[p.rng.IntN(2)]),
			strAttr("user_id", "", p.userID),
			strAttr("order_id", "", p.orderID),
		},
	}
}

// Typical durations (medians) of a span's own work, before and after its
// children; the spread is lognormal so the latency histogram has a long tail.
const (
	ms = int64(1e6)
	us = int64(1e3)
)

func selfTime(s *plannedSpan) int64 {
	switch s.layer {
	case layerDatabase:
		return 2 * ms
	case layerCache:
		return 300 * us
	case layerMQ:
		return 1 * ms
	}
	if s.kind == kindClient { // network time to the server and back
		return 400 * us
	}
	if s.kind == kindInternal {
		return 700 * us
	}
	return 1 * ms
}

// lognormal draws a duration with the given median and a sigma of 0.8
// (p99 about 6x the median).
func (p *planner) lognormal(median int64) int64 {
	d := int64(float64(median) * math.Exp(0.8*p.rng.NormFloat64()))
	return max(d, 1*us)
}

// layout assigns start and end times: some own work, the children one after
// another, then the rest of the own work. It returns the span's end.
func (p *planner) layout(i int, start int64) int64 {
	s := &p.t.spans[i]
	s.start = start
	self := p.lognormal(selfTime(s))
	t := start + self/2
	for _, c := range p.children[i] {
		t = p.layout(c, t) + p.lognormal(50*us)
	}
	s.end = t + self - self/2
	if s.errMsg != "" {
		p.failed(s)
	} else if s.kind == kindServer && p.rng.IntN(10) == 0 {
		s.events = append(s.events, event{name: "slow request", at: s.start + self/2,
			attrs: []attr{strAttr("reason", "", "upstream latency"), numAttr("threshold_ms", "", 50)}})
	} else if s.layer == layerCache && p.rng.IntN(10) == 0 {
		s.events = append(s.events, event{name: "cache miss", at: s.start + self/4,
			attrs: []attr{strAttr("cache.key", "", p.sku)}})
	}
	return s.end
}

// failed records what a failing span reports: a 500 on HTTP servers and an
// exception event, as the OpenTelemetry instrumentations do.
func (p *planner) failed(s *plannedSpan) {
	for k := range s.attrs {
		if s.attrs[k].key == "http.response.status_code" {
			s.attrs[k].num = 500
		}
	}
	s.events = append(s.events, event{name: "exception", at: s.end - 1,
		attrs: []attr{
			strAttr("exception.type", "error.kind", "*errors.errorString"),
			strAttr("exception.message", "message", s.errMsg),
			strAttr("exception.stacktrace", "stack", "goroutine 1 [running]:\nshop/"+s.inst.service+".handle()\n\t/src/shop/"+s.inst.service+"/handler.go:88"),
		}})
}

func errorMessage(l layer, k spanKind, rng *rand.Rand) string {
	switch l {
	case layerDatabase:
		return [3]string{"Error 1213 (40001): Deadlock found when trying to get lock",
			"Error 1062 (23000): Duplicate entry for key 'PRIMARY'",
			"dial tcp 10.0.9.5:3306: i/o timeout"}[rng.IntN(3)]
	case layerCache:
		return "redis: connection pool timeout"
	case layerMQ:
		return "kafka: client has run out of available brokers to talk to"
	}
	switch k {
	case kindServer:
		return [2]string{"internal server error", "context deadline exceeded"}[rng.IntN(2)]
	case kindClient:
		return "read tcp: connection reset by peer"
	}
	return "payment declined: insufficient funds"
}
