package alerting

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/silence"
	pb "github.com/prometheus/alertmanager/silence/silencepb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Silence mutes the notifications of the alerts its matchers all match,
// from StartsAt to EndsAt. The JSON is Alertmanager's API v2 silence, so
// amtool users and scripts know it.
type Silence struct {
	ID        string    `json:"id,omitempty"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	// Status is active, pending (starts later) or expired.
	Status    *SilenceStatus `json:"status,omitempty"`
	UpdatedAt time.Time      `json:"updatedAt,omitzero"`
}

// SilenceStatus is Alertmanager's {"state": ...}.
type SilenceStatus struct {
	State string `json:"state"`
}

// Matcher matches one label: equal or not, to a value or a regular
// expression (anchored, as in PromQL).
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual,omitempty"` // default true
}

// ErrSilenceNotFound is returned for an unknown silence ID.
var ErrSilenceNotFound = errors.New("no such silence")

// SilenceError is a silence that cannot be set, and why.
type SilenceError struct{ Err error }

func (e *SilenceError) Error() string { return "invalid silence: " + e.Err.Error() }
func (e *SilenceError) Unwrap() error { return e.Err }

// Silences lists the silences, active first, then pending, then expired,
// each newest first. state, when set, keeps only that state's.
func (a *Alerting) Silences(ctx context.Context, state string) ([]Silence, error) {
	sils, _, err := a.notify.silences.Query(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing silences: %w", err)
	}
	now := time.Now()
	out := make([]Silence, 0, len(sils))
	for _, s := range sils {
		o := fromProto(s, now)
		if state != "" && o.Status.State != state {
			continue
		}
		out = append(out, o)
	}
	rank := map[string]int{"active": 0, "pending": 1, "expired": 2}
	slices.SortFunc(out, func(x, y Silence) int {
		if r := rank[x.Status.State] - rank[y.Status.State]; r != 0 {
			return r
		}
		return y.StartsAt.Compare(x.StartsAt)
	})
	return out, nil
}

// SetSilence creates a silence (s.ID empty) or changes one, and returns its
// ID. StartsAt defaults to now. Changing what a silence matches, or its
// start once it has begun, expires it and makes a new one (a new ID), as
// Alertmanager does.
func (a *Alerting) SetSilence(ctx context.Context, s Silence) (string, error) {
	now := time.Now()
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	if !s.EndsAt.After(s.StartsAt) {
		return "", &SilenceError{fmt.Errorf("endsAt (%s) must be after startsAt (%s)", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))}
	}
	if s.EndsAt.Before(now) {
		return "", &SilenceError{fmt.Errorf("endsAt (%s) is in the past", s.EndsAt.Format(time.RFC3339))}
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		return "", &SilenceError{errors.New("createdBy is empty: say who silences")}
	}
	if len(s.Matchers) == 0 {
		return "", &SilenceError{errors.New("no matchers: a silence must say which alerts it mutes")}
	}
	p := &pb.Silence{Id: s.ID, StartsAt: timestamppb.New(s.StartsAt), EndsAt: timestamppb.New(s.EndsAt), CreatedBy: s.CreatedBy, Comment: s.Comment}
	var set pb.MatcherSet
	matchesEmpty := true
	for i, m := range s.Matchers {
		if m.Name == "" {
			return "", &SilenceError{fmt.Errorf("matcher %d has no label name", i)}
		}
		eq := m.IsEqual == nil || *m.IsEqual
		t := pb.Matcher_EQUAL
		switch {
		case m.IsRegex && eq:
			t = pb.Matcher_REGEXP
		case m.IsRegex:
			t = pb.Matcher_NOT_REGEXP
		case !eq:
			t = pb.Matcher_NOT_EQUAL
		}
		if m.IsRegex {
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return "", &SilenceError{fmt.Errorf("matcher %s=~%q: %w", m.Name, m.Value, err)}
			}
			if !(eq && re.MatchString("")) && !(!eq && !re.MatchString("")) {
				matchesEmpty = false
			}
		} else if (eq && m.Value != "") || (!eq && m.Value == "") {
			matchesEmpty = false
		}
		set.Matchers = append(set.Matchers, &pb.Matcher{Type: t, Name: m.Name, Pattern: m.Value})
	}
	if matchesEmpty {
		return "", &SilenceError{errors.New("the matchers match every alert (each matches an empty label): name at least one label value")}
	}
	p.MatcherSets = []*pb.MatcherSet{&set}
	p.Matchers = set.Matchers
	if err := a.notify.silences.Set(ctx, p); err != nil {
		if errors.Is(err, silence.ErrNotFound) {
			return "", ErrSilenceNotFound
		}
		return "", &SilenceError{err}
	}
	return p.Id, nil
}

// ExpireSilence ends a silence now.
func (a *Alerting) ExpireSilence(ctx context.Context, id string) error {
	err := a.notify.silences.Expire(ctx, id)
	if errors.Is(err, silence.ErrNotFound) {
		return ErrSilenceNotFound
	}
	return err
}

// GetSilence returns one silence.
func (a *Alerting) GetSilence(ctx context.Context, id string) (Silence, error) {
	s, err := a.notify.silences.QueryOne(ctx, silence.QIDs(id))
	if errors.Is(err, silence.ErrNotFound) {
		return Silence{}, ErrSilenceNotFound
	}
	if err != nil {
		return Silence{}, err
	}
	return fromProto(s, time.Now()), nil
}

func fromProto(s *pb.Silence, now time.Time) Silence {
	out := Silence{ID: s.Id, StartsAt: s.StartsAt.AsTime(), EndsAt: s.EndsAt.AsTime(), CreatedBy: s.CreatedBy, Comment: s.Comment}
	if s.UpdatedAt != nil {
		out.UpdatedAt = s.UpdatedAt.AsTime()
	}
	ms := s.Matchers
	if len(s.MatcherSets) > 0 {
		ms = s.MatcherSets[0].Matchers
	}
	for _, m := range ms {
		eq := m.Type == pb.Matcher_EQUAL || m.Type == pb.Matcher_REGEXP
		out.Matchers = append(out.Matchers, Matcher{Name: m.Name, Value: m.Pattern,
			IsRegex: m.Type == pb.Matcher_REGEXP || m.Type == pb.Matcher_NOT_REGEXP, IsEqual: &eq})
	}
	state := "active"
	switch {
	case !now.Before(out.EndsAt):
		state = "expired"
	case now.Before(out.StartsAt):
		state = "pending"
	}
	out.Status = &SilenceStatus{State: state}
	return out
}
