package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestLifecycleStopOrder: stops run once each, in registration order, and their errors are
// joined and named.
func TestLifecycleStopOrder(t *testing.T) {
	lc := newLifecycle(quiet(), time.Minute)
	var ran []string
	errDisk := errors.New("disk gone")
	for _, name := range []string{"engine", "history", "mqtt", "alerting", "occupancy file"} {
		lc.onStop(name, func(context.Context) error {
			ran = append(ran, name)
			if name == "history" || name == "occupancy file" {
				return errDisk
			}
			return nil
		})
	}
	err := lc.stop()
	if want := []string{"engine", "history", "mqtt", "alerting", "occupancy file"}; !slices.Equal(ran, want) {
		t.Fatalf("stops ran %v, want %v", ran, want)
	}
	if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "stopping history") || !strings.Contains(err.Error(), "stopping occupancy file") {
		t.Fatalf("stop error %v: want both failures, named", err)
	}
	if err := lc.stop(); err != nil || len(ran) != 5 {
		t.Fatalf("a second stop ran again (%v, %v)", ran, err)
	}
}

// TestLifecycleStopTimeout: a stop that does not return within the limit ends the shutdown
// with an error naming it, and the later stops (closing files) do not run beside it.
func TestLifecycleStopTimeout(t *testing.T) {
	lc := newLifecycle(quiet(), 50*time.Millisecond)
	release := make(chan struct{})
	defer close(release)
	var later bool
	lc.onStop("engine", func(context.Context) error { <-release; return nil })
	lc.onStop("occupancy file", func(context.Context) error { later = true; return nil })
	err := lc.stop()
	if err == nil || !strings.Contains(err.Error(), "stopping engine") {
		t.Fatalf("stop error %v: want the engine named", err)
	}
	if later {
		t.Fatal("the file was closed while the engine's stop was still under way")
	}
}
