package promotion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Service is the promotion side as the API and the manager page use it: the plans and what
// is worked out from them.
type Service struct {
	*Plans
	Config *configs.Config
	// History is where the forecast and the review read; nil: they are not available.
	History HistoryReader
	// Records are the door metering and drill records (the door side's); nil: the review
	// says they are not available.
	Records Records
}

// ErrNoHistory: the service keeps no history to forecast or review from.
var ErrNoHistory = errors.New("history is not recorded by this service")

// Location is the site's time zone.
func (s *Service) Location() *time.Location { return s.Config.Location }

// Assess is the capacity assessment, with the plan id's event capacities when id is given.
func (s *Service) Assess(id string) (*Assessment, error) {
	if id == "" {
		return Assess(s.Config, nil), nil
	}
	p, ok := s.Schedule().Plan(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return Assess(s.Config, &p.EventPlan), nil
}

// DayPlan is a plan's forecast and roster.
type DayPlan struct {
	Plan     Plan      `json:"plan"`
	Forecast *Forecast `json:"forecast"`
	Roster   *Roster   `json:"roster"`
}

// MakeDayPlan works out the forecast and roster of plan p.
func MakeDayPlan(ctx context.Context, cfg *configs.Config, sched *Schedule, h SeriesReader, p Plan) (*DayPlan, error) {
	basis, days := "none", []Day(nil)
	if h != nil {
		var err error
		if basis, days, err = ComparableDays(ctx, cfg, sched, h, p.EventPlan); err != nil {
			return nil, err
		}
	}
	f := BuildForecast(cfg, p.EventPlan, basis, days)
	return &DayPlan{Plan: p, Forecast: f, Roster: BuildRoster(cfg, p.EventPlan, f)}, nil
}

// DayPlan is the forecast and roster of the plan id.
func (s *Service) DayPlan(ctx context.Context, id string) (*DayPlan, error) {
	sched := s.Schedule()
	p, ok := sched.Plan(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if s.History == nil {
		return MakeDayPlan(ctx, s.Config, sched, nil, p)
	}
	return MakeDayPlan(ctx, s.Config, sched, s.History, p)
}

// Review is the review of the plan id.
func (s *Service) Review(ctx context.Context, id string) (*Review, error) {
	if s.History == nil {
		return nil, ErrNoHistory
	}
	return BuildReview(ctx, s.Config, s.Schedule(), s.History, s.Records, id)
}

// MaxPlanBytes bounds a plan's JSON.
const MaxPlanBytes = 64 << 10

// DecodePlanInput reads a plan's JSON strictly: unknown fields, trailing data and more than
// MaxPlanBytes are refused.
func DecodePlanInput(r io.Reader) (PlanInput, error) {
	var in PlanInput
	b, err := io.ReadAll(io.LimitReader(r, MaxPlanBytes+1))
	if err != nil {
		return in, fmt.Errorf("reading the plan: %w", err)
	}
	if len(b) > MaxPlanBytes {
		return in, fmt.Errorf("the plan is larger than %d bytes", MaxPlanBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return PlanInput{}, fmt.Errorf("the plan is not valid JSON of a plan: %w", err)
	}
	if dec.More() {
		return PlanInput{}, errors.New("the plan is followed by more data")
	}
	return in, nil
}
