package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultStopTimeout bounds a whole shutdown when Options.StopTimeout is zero.
const DefaultStopTimeout = 30 * time.Second

// lifecycle is the one ordered list of the service's stops. Stops run in the order they were
// registered (which is not the reverse of the start order: see New), each logged by name;
// the whole run is bounded by a time limit and their errors are joined.
type lifecycle struct {
	log     *slog.Logger
	timeout time.Duration
	stops   []namedStop
	stopped bool
}

type namedStop struct {
	name string
	fn   func(context.Context) error
}

func newLifecycle(log *slog.Logger, timeout time.Duration) *lifecycle {
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	return &lifecycle{log: log, timeout: timeout}
}

// onStop adds a stop at the end of the list. A stop is called once, also when its component
// was never built or started (it then does nothing), so that a start that fails half-way runs
// the same list as a shutdown.
func (l *lifecycle) onStop(name string, fn func(context.Context) error) {
	l.stops = append(l.stops, namedStop{name, fn})
}

// stop runs every stop in order, at most once for the lifecycle's whole life. When the time
// limit passes it gives up waiting (the stop under way is named in the error) and runs no
// further stops: running a later one (closing a file) beside one still under way is worse
// than leaving it to the process's exit.
func (l *lifecycle) stop() error {
	if l.stopped {
		return nil
	}
	l.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	var errs []error
	for _, s := range l.stops {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.fn(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				l.log.Error("stop: "+s.name, "error", err)
				errs = append(errs, fmt.Errorf("stopping %s: %w", s.name, err))
				continue
			}
			l.log.Info("stopped", "component", s.name, "took", time.Since(start).Round(time.Millisecond))
		case <-ctx.Done():
			err := fmt.Errorf("stopping %s: not done after the stop time limit of %v; the rest is left to the process's exit", s.name, l.timeout)
			l.log.Error("stop: timed out", "component", s.name, "limit", l.timeout)
			return errors.Join(append(errs, err)...)
		}
	}
	return errors.Join(errs...)
}
