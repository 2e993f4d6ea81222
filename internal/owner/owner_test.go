package owner

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait bounds every wait in these tests; no test asserts how long anything took.
const wait = 10 * time.Second

func received(ch <-chan struct{}) int {
	n := 0
	for {
		select {
		case <-ch:
			n++
		default:
			return n
		}
	}
}

func TestSignal(t *testing.T) {
	for _, tc := range []struct {
		name string
		subs int
		// run notifies and cancels; cancel[i] cancels subscription i.
		run         func(s *Signal, cancel []func())
		want        []int // signals waiting on each subscription afterwards
		subscribers int
	}{
		{"a burst becomes one delivery", 1, func(s *Signal, _ []func()) {
			for range 100 {
				s.Notify()
			}
		}, []int{1}, 1},
		{"no notify, nothing", 2, func(*Signal, []func()) {}, []int{0, 0}, 2},
		{"every subscriber gets it", 3, func(s *Signal, _ []func()) { s.Notify(); s.Notify() }, []int{1, 1, 1}, 3},
		{"a cancelled subscription receives nothing and is removed", 2, func(s *Signal, c []func()) {
			s.Notify() // already buffered for both when the first is cancelled
			c[0]()
			s.Notify()
		}, []int{0, 1}, 1},
		{"cancelling twice is harmless", 2, func(s *Signal, c []func()) { c[1](); c[1](); s.Notify() }, []int{1, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Signal
			chs := make([]<-chan struct{}, tc.subs)
			cancels := make([]func(), tc.subs)
			for i := range tc.subs {
				chs[i], cancels[i] = s.Subscribe()
			}
			tc.run(&s, cancels)
			for i, ch := range chs {
				if got := received(ch); got != tc.want[i] {
					t.Errorf("subscription %d received %d signals, want %d", i, got, tc.want[i])
				}
			}
			if got := s.Subscribers(); got != tc.subscribers {
				t.Errorf("%d subscribers left, want %d", got, tc.subscribers)
			}
		})
	}
}

// Notify runs while others subscribe and cancel (for -race); a cancelled channel stays empty.
func TestSignalConcurrent(t *testing.T) {
	var s Signal
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				s.Notify()
			}
		}
	})
	for range 200 {
		ch, cancel := s.Subscribe()
		cancel()
		if n := received(ch); n != 0 {
			t.Fatalf("a cancelled subscription received %d signals", n)
		}
	}
	close(stop)
	wg.Wait()
	if n := s.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left after all cancelled", n)
	}
}

var errStopped = errors.New("stopped")

func TestCommands(t *testing.T) {
	errBad := errors.New("bad")
	for _, tc := range []struct {
		name    string
		owner   func(c *Commands[func() (any, error)], stop func(), cancel func()) // the owner's side
		wantVal any
		wantErr error
		wantRan bool
	}{
		{"the reply comes back", func(c *Commands[func() (any, error)], _, _ func()) {
			cmd := <-c.Requests()
			v, err := cmd.Req()
			cmd.Reply(v, err)
		}, 42, nil, true},
		{"an error comes back", func(c *Commands[func() (any, error)], _, _ func()) {
			cmd := <-c.Requests()
			cmd.Reply(nil, errBad)
		}, nil, errBad, false},
		{"a stopped owner", func(_ *Commands[func() (any, error)], stop, _ func()) { stop() }, nil, errStopped, false},
		{"ctx ends before the owner takes it", func(_ *Commands[func() (any, error)], _, cancel func()) { cancel() }, nil, context.Canceled, false},
		{"ctx ends after the owner took it: its effects stay", func(c *Commands[func() (any, error)], _, cancel func()) {
			cmd := <-c.Requests()
			_, _ = cmd.Req()
			cancel()
		}, nil, context.Canceled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stopped := make(chan struct{})
			c := NewCommands[func() (any, error)](stopped, errStopped)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var ran atomic.Bool
			ownerDone := make(chan struct{})
			go func() { defer close(ownerDone); tc.owner(c, func() { close(stopped) }, cancel) }()
			v, err := c.Do(ctx, func() (any, error) { ran.Store(true); return 42, nil })
			<-ownerDone
			if !errors.Is(err, tc.wantErr) || v != tc.wantVal {
				t.Errorf("Do = %v, %v; want %v, %v", v, err, tc.wantVal, tc.wantErr)
			}
			if ran.Load() != tc.wantRan {
				t.Errorf("fn ran: %v, want %v", ran.Load(), tc.wantRan)
			}
		})
	}
}

// Reply never blocks, even when the caller has gone.
func TestCommandReplyAfterCallerLeft(t *testing.T) {
	c := NewCommands[func()](make(chan struct{}), errStopped)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Do(ctx, func() {}); done <- err }()
	cmd := <-c.Requests()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	cmd.Reply(1, nil)
}

func TestPacer(t *testing.T) {
	const interval = 5 * time.Millisecond
	for _, tc := range []struct {
		name string
		edge Edge
		run  func(t *testing.T, p *Pacer)
	}{
		{"leading: the first change goes out at once", Leading, func(t *testing.T, p *Pacer) {
			if !p.Ready() {
				t.Fatal("the first change was held")
			}
		}},
		{"leading: a burst is held and goes out once", Leading, func(t *testing.T, p *Pacer) {
			if !p.Ready() {
				t.Fatal("the first change was held")
			}
			p.Sent()
			for i := range 50 {
				if p.Ready() {
					t.Fatalf("change %d of the burst went out at once", i)
				}
			}
			fire(t, p)
			if !p.Fired() {
				t.Fatal("the held burst was not due when C fired")
			}
			p.Sent()
			select {
			case <-p.C():
				t.Fatal("C fired twice for one burst")
			default:
			}
		}},
		{"leading: a change after a quiet spell goes out at once", Leading, func(t *testing.T, p *Pacer) {
			p.Sent()
			time.Sleep(4 * interval)
			if !p.Ready() {
				t.Fatal("a change after a quiet spell was held")
			}
		}},
		{"leading under load only: an idle owner's next change goes out at once", Leading, func(t *testing.T, p *Pacer) {
			p.PaceUnderLoad(func() time.Duration { return 0 })
			for i := range 5 {
				if !p.Ready() {
					t.Fatalf("change %d was held although the owner was idle", i)
				}
				p.Sent()
			}
		}},
		{"leading under load only: a busy owner's burst is held and goes out once", Leading, func(t *testing.T, p *Pacer) {
			busy := true
			p.PaceUnderLoad(func() time.Duration {
				if busy {
					return time.Hour // more than the interval: held to the interval
				}
				return 0
			})
			p.Sent()
			for i := range 10 {
				if p.Ready() {
					t.Fatalf("change %d went out while the owner was busy", i)
				}
			}
			busy = false // held changes wait for C even when the owner turns idle
			if p.Ready() {
				t.Fatal("a change joined to a held one went out on its own")
			}
			fire(t, p)
			if !p.Fired() {
				t.Fatal("the held burst was not due when C fired")
			}
			p.Sent()
			if !p.Ready() {
				t.Fatal("an idle owner's change after the burst was held")
			}
		}},
		{"trailing: a change waits for the tick, once", Trailing, func(t *testing.T, p *Pacer) {
			for i := range 10 {
				if p.Ready() {
					t.Fatalf("change %d went out before the tick", i)
				}
			}
			fire(t, p)
			if !p.Fired() {
				t.Fatal("the held changes were not due on the tick")
			}
			fire(t, p)
			if p.Fired() {
				t.Fatal("a tick without a change was due")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPacer(interval, tc.edge)
			defer p.Stop()
			tc.run(t, p)
		})
	}
}

func fire(t *testing.T, p *Pacer) {
	t.Helper()
	select {
	case <-p.C():
	case <-time.After(wait):
		t.Fatal("C never fired")
	}
}

// An owner paced by a Pacer and fed by a Signal: the first change is acted on with its own
// value, and the last change of a burst is always acted on.
func TestPacedOwner(t *testing.T) {
	for _, edge := range []Edge{Leading, Trailing} {
		const changes = 200
		var sig Signal
		var state atomic.Int64
		changed, cancel := sig.Subscribe()
		seen := make(chan int64, changes+1)
		ctx, stop := context.WithTimeout(context.Background(), wait)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer cancel()
			p := NewPacer(5*time.Millisecond, edge)
			defer p.Stop()
			act := func() { seen <- state.Load(); p.Sent() }
			for {
				select {
				case <-ctx.Done():
					return
				case <-changed:
					if p.Ready() {
						act()
					}
				case <-p.C():
					if p.Fired() {
						act()
					}
				}
			}
		}()
		state.Store(1)
		sig.Notify()
		if edge == Leading {
			if v := <-seen; v != 1 {
				t.Fatalf("leading: the first change was acted on as %d", v)
			}
		}
		for i := int64(2); i <= changes; i++ {
			state.Store(i)
			sig.Notify()
		}
		for v := int64(0); v != changes; {
			select {
			case v = <-seen:
			case <-ctx.Done():
				t.Fatalf("edge %d: the last change of the burst was never acted on (last seen %d)", edge, v)
			}
		}
		stop()
		<-done
		if n := sig.Subscribers(); n != 0 {
			t.Fatalf("%d subscribers left", n)
		}
	}
}
