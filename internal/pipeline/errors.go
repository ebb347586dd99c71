package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// Reason is why the front door refused data: one vocabulary for every
// receiver, every signal, the receivers' counters and integrity's findings.
type Reason string

// Reasons data is refused for.
const (
	// Malformed: the request could not be decoded at all.
	Malformed Reason = "malformed"
	// Invalid: decoded, but breaks a limit storage cannot keep (IDs, times,
	// sizes). Never retried.
	Invalid Reason = "invalid"
	// TooLarge: over the request size limit.
	TooLarge Reason = "too_large"
	// Unauthenticated: a missing or wrong token.
	Unauthenticated Reason = "unauthenticated"
	// Forbidden: a tenant that is not configured, or that the request's
	// token may not write to.
	Forbidden Reason = "forbidden"
	// Overloaded: the in-flight budget is spent; retry after RetryAfter.
	Overloaded Reason = "overloaded"
	// Unavailable: a consumer (storage) failed or cannot take data now;
	// retry after RetryAfter.
	Unavailable Reason = "storage"
	// Abandoned: the client stopped waiting (its deadline passed, it hung
	// up) before the data was stored, so it was not: the client sends it
	// again, and storing this copy too would duplicate it.
	Abandoned Reason = "abandoned"
)

// Retryable tells whether the same data may succeed later.
func (r Reason) Retryable() bool { return r == Overloaded || r == Unavailable || r == Abandoned }

// RetryAfter is the delay every receiver asks a client turned away for a
// retryable reason to wait.
const RetryAfter = time.Second

// Error is the front door's refusal of a request, or of what was left of
// it. Receivers map Reason to their wire's status codes.
type Error struct {
	Reason Reason
	// Msg is what a client or operator reads: what was wrong and, where it
	// helps, what to change.
	Msg string
	err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause, such as a consumer's error.
func (e *Error) Unwrap() error { return e.err }

// Refusef builds an Error for reason.
func Refusef(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf is err's Reason: an *Error's own, Unavailable for any other error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return Unavailable
}

// ErrOverloaded is the refusal of a request over the in-flight budget.
var ErrOverloaded = &Error{Reason: Overloaded, Msg: "server overloaded: too much data in flight, retry later"}
