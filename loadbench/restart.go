package loadbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	cwauth "github.com/crowdwatch/crowdwatch/web/auth"
	"github.com/crowdwatch/crowdwatch/zones"
)

// RestartOptions bound a restart-to-ready run (`crowdwatch bench --restart`).
type RestartOptions struct {
	Zones int // zones, each with a door from outside and a counter
	Days  int // days of crossing log written before the restarts
	Runs  int // restarts measured
	// History is a history file to start with (copied): the history benchmark's year kept
	// with HISTORY_BENCH_KEEP (docs/benchmarks.md); "" starts without history.
	History string
	Service string // the crowdwatch binary (default: this process's own)
}

// Check refuses a run outside the tool's bounds.
func (o RestartOptions) Check() error {
	switch {
	case o.Zones < 1 || o.Zones > 1000:
		return fmt.Errorf("bench: --zones %d must be 1 to 1000", o.Zones)
	case o.Days < 0 || o.Days > 31:
		return fmt.Errorf("bench: --log-days %d must be 0 to 31", o.Days)
	case o.Runs < 1 || o.Runs > 20:
		return fmt.Errorf("bench: --runs %d must be 1 to 20", o.Runs)
	}
	return nil
}

// The crossing log is written as a busy store's counters write it: every counter reports
// every 5 s while the store is open (13 hours a day) and two reports in three carry crossings.
const (
	logEvery   = 5 * time.Second
	openHours  = 13
	restartCap = 30 * time.Second // one start to ready, at most
)

// RunRestart writes the crossing log through the engine (as the service commits it), then
// starts the service on it Runs times and measures from the process's start to the first
// /readyz 200.
func RunRestart(ctx context.Context, out io.Writer, o RestartOptions) error {
	dir, err := os.MkdirTemp("", "crowdwatch-bench-restart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, sum, err := cwauth.NewToken()
	if err != nil {
		return err
	}
	dbPath := filepath.Join(dir, "bench.db")
	yaml := benchStore(Options{Zones: o.Zones, Devices: o.Zones}, "", sum, dbPath)
	cfgPath := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return err
	}
	cfg, err := configs.Parse([]byte(yaml), nil)
	if err != nil {
		return fmt.Errorf("bench: the generated store: %w", err)
	}
	t0 := time.Now()
	n, err := writeLog(ctx, cfg, dbPath, o)
	if err != nil {
		return err
	}
	st, _ := os.Stat(dbPath)
	fmt.Fprintf(out, "restart: %d zones; crossing log of %d days: %d reports written in %s, store file %d MB\n",
		o.Zones, o.Days, n, time.Since(t0).Round(time.Second), st.Size()>>20)
	if o.History != "" {
		if err := copyFile(o.History, cfg.HistoryPath()); err != nil {
			return fmt.Errorf("bench: the history file: %w", err)
		}
		st, _ := os.Stat(cfg.HistoryPath())
		fmt.Fprintf(out, "restart: history file %s (%d MB)\n", o.History, st.Size()>>20)
	}
	exe := o.Service
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	var times []time.Duration
	for run := range o.Runs {
		d, err := startToReady(ctx, exe, cfgPath, dir)
		if err != nil {
			return fmt.Errorf("bench: restart %d: %w", run+1, err)
		}
		times = append(times, d)
		fmt.Fprintf(out, "restart %d: ready in %s\n", run+1, d.Round(time.Millisecond))
	}
	slices.Sort(times)
	fmt.Fprintf(out, "restart to ready: median %s, min %s, max %s over %d runs\n", times[len(times)/2].Round(time.Millisecond),
		times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), len(times))
	return nil
}

// writeLog runs the engine on the store with a clock that goes through the last o.Days
// days and submits every counter's reports; it returns how many were submitted.
func writeLog(ctx context.Context, cfg *configs.Config, dbPath string, o RestartOptions) (int, error) {
	store, err := zones.OpenStore(dbPath, cfg.Site.ID)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	end := time.Now().Truncate(time.Hour)
	var clock atomic.Int64
	clock.Store(end.AddDate(0, 0, -o.Days).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e, err := zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(prometheus.NewRegistry()), zones.Options{
		ResetHour: -1, Now: now, CommitInterval: time.Millisecond, CommitOnIdle: true, LogRetention: cfg.Storage.LogRetention,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	ectx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ectx) }()
	defer func() { stop(); <-done }()
	in, outs := make([]uint64, o.Zones), make([]uint64, o.Zones)
	seq := uint64(0)
	var wg sync.WaitGroup
	var failed atomic.Int64
	ack := func(oc zones.Outcome) {
		if oc != zones.Applied {
			failed.Add(1)
		}
		wg.Done()
	}
	n := 0
	for t := end.AddDate(0, 0, -o.Days); t.Before(end); t = t.Add(logEvery) {
		if h := t.Hour(); h < 9 || h >= 9+openHours {
			t = t.Add(time.Hour - logEvery)
			continue
		}
		clock.Store(t.UnixNano())
		seq++
		for d := range o.Zones {
			// Two reports in three carry crossings; in and out keep the zone near 50.
			if (int(seq)+d)%3 == 0 {
				continue
			}
			in[d] += 2
			outs[d] += 2
			if (int(seq)+d)%7 == 0 {
				in[d]++
			}
			wg.Add(1)
			m := &zones.Message{Received: t, Done: ack, Report: &zones.Report{Device: fmt.Sprintf("dev-%04d", d), Kind: zones.KindCounter,
				Boot: "bench", Seq: seq, TS: t, Lines: []zones.LineCount{{Line: "1", In: in[d], Out: outs[d]}}}}
			if err := e.Submit(ctx, m); err != nil {
				wg.Done()
				return n, err
			}
			n++
		}
		if seq%720 == 0 {
			wg.Wait() // the clock must not run ahead of what the engine has applied
		}
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return n, fmt.Errorf("bench: %d of %d reports not applied", f, n)
	}
	return n, nil
}

// startToReady starts `serve` and polls /readyz until it answers 200, then stops it.
func startToReady(ctx context.Context, exe, cfgPath, dir string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, restartCap)
	defer cancel()
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	svc := exec.CommandContext(ctx, exe, "serve", "--config", cfgPath)
	svc.Stderr, svc.Stdout = logf, logf
	t0 := time.Now()
	if err := svc.Start(); err != nil {
		return 0, fmt.Errorf("starting the service: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- svc.Wait() }()
	defer func() {
		_ = svc.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = svc.Process.Kill()
			<-exited
		}
	}()
	client := &http.Client{Timeout: time.Second}
	for {
		if addr := readyAddr(logPath); addr != "" {
			resp, err := client.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(t0), nil
				}
			}
		}
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			return 0, fmt.Errorf("the service exited before it was ready (%v): %s", err, b)
		case <-ctx.Done():
			return 0, errors.New("not ready within 30s")
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// readyAddr is the HTTP address from the service's ready line, "" before it.
func readyAddr(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	if m := benchReady.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
