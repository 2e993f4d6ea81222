package owner

import "context"

// Commands carry requests into the owner goroutine. F is what a request is: usually the
// function the owner runs, for example func() (any, error), or func(now time.Time) (any,
// error) when the owner hands each command its clock reading; or a value the owner acts on.
type Commands[F any] struct {
	ch         chan Command[F]
	stopped    <-chan struct{}
	errStopped error
}

// Command is one request: the owner carries out Req (calls it, with whatever argument F
// takes), does what must follow (a commit, an evaluation), then calls Reply exactly once.
type Command[F any] struct {
	Req   F
	reply chan result
}

type result struct {
	val any
	err error
}

// NewCommands makes the round-trip of an owner whose Run closes stopped when it returns;
// Do returns errStopped from then on.
func NewCommands[F any](stopped <-chan struct{}, errStopped error) *Commands[F] {
	return &Commands[F]{ch: make(chan Command[F]), stopped: stopped, errStopped: errStopped}
}

// Requests is what the owner's loop receives commands from.
func (c *Commands[F]) Requests() <-chan Command[F] { return c.ch }

// Do hands req to the owner and waits for its reply. It gives up when ctx ends, or with
// errStopped when the owner has stopped before taking req. Once taken, req's effects happen
// even if ctx ends while waiting for the reply.
func (c *Commands[F]) Do(ctx context.Context, req F) (any, error) {
	cmd := Command[F]{Req: req, reply: make(chan result, 1)}
	select {
	case c.ch <- cmd:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stopped:
		return nil, c.errStopped
	}
	select {
	case r := <-cmd.reply:
		return r.val, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reply answers the caller. It never blocks, whether or not the caller still waits.
func (c Command[F]) Reply(val any, err error) { c.reply <- result{val, err} }
