package shop

import (
	"fmt"
	"sync"
)

// message is a record on the simulated Kafka topic. Headers carry the trace
// context from producer to consumer, as Kafka record headers do.
type message struct {
	Key     string
	Value   []byte
	Headers map[string]string
}

// topic is a simulated Kafka topic: a bounded in-process queue with one
// consumer.
type topic struct {
	name string

	mu     sync.RWMutex // guards closed against sends racing close
	closed bool
	ch     chan message
}

func newTopic(name string) *topic {
	return &topic{name: name, ch: make(chan message, 1024)}
}

// send enqueues m, or fails when the topic is full or closed.
func (t *topic) send(m message) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return fmt.Errorf("topic %s is closed", t.name)
	}
	select {
	case t.ch <- m:
		return nil
	default:
		return fmt.Errorf("topic %s is full", t.name)
	}
}

// messages is what the consumer ranges over; it ends after close.
func (t *topic) messages() <-chan message { return t.ch }

func (t *topic) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.ch)
	}
}
