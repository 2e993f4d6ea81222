package owner

import "sync"

// Signal tells subscribers that something changed. Signals are coalesced (each subscriber's
// channel holds at most one) and Notify never blocks, so a slow reader only sees the latest
// state when it looks. The zero value is ready to use.
type Signal struct {
	mu   sync.Mutex
	subs map[int]chan struct{}
	next int
}

// Subscribe returns a channel signalled after each Notify, and a function that cancels the
// subscription: once it has returned, the channel receives nothing more. Cancelling twice is
// harmless.
func (s *Signal) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[int]chan struct{}{}
	}
	id := s.next
	s.next++
	s.subs[id] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
		// A signal sent before the cancel must not be read after it.
		select {
		case <-ch:
		default:
		}
	}
}

// Notify signals every subscriber without waiting for any.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribers is how many subscriptions are open.
func (s *Signal) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}
