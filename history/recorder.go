// Package history records each zone's occupancy and each door's crossings over time, rolls
// them up per minute and per hour, keeps each resolution for its retention, and answers
// queries and after-event reports from its own bbolt file, which `crowdwatch report` can read
// while the service runs.
package history

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/storage"

	"github.com/crowdwatch/crowdwatch/zones"
)

// Options configure a Recorder.
type Options struct {
	Path string
	Site Site
	// SampleInterval is how often every zone's figures are sampled (a zone that did not
	// change writes nothing); level changes are sampled when they happen.
	SampleInterval time.Duration
	// FlushInterval is how often buffered records are written. A crash loses at most this
	// much of the raw series; the roll-ups are rebuilt from what was written.
	FlushInterval time.Duration
	// BufferBytes bounds the raw records waiting to be written when the file stays busy.
	BufferBytes int
	Retention   Retention
	PruneEvery  time.Duration
	// LockTimeout is how long one flush waits for readers to release the file.
	LockTimeout time.Duration
	Levels      Levels    // nil: levels from LevelOf
	LevelOf     LevelFunc // nil: DefaultLevel
	Now         func() time.Time
	Log         *slog.Logger
}

// Recorder samples the engine in one goroutine and writes in another: sampling never waits
// for the disk, and one goroutine owns every write transaction on the history file.
type Recorder struct {
	o       Options
	src     zones.Source
	file    *file
	m       *metrics
	held    atomic.Int64
	writeCh chan *batch
	// first is the engine's state when the recorder was made: on a first start it is the
	// baseline for door crossings, so that crossings between then and Run are not lost.
	first *zones.Snapshot
}

type metrics struct {
	samples    prometheus.Counter
	dropped    prometheus.Counter
	flushes    prometheus.Histogram
	flushErrs  prometheus.Counter
	pending    prometheus.Gauge
	lastFlush  prometheus.Gauge
	pruned     *prometheus.CounterVec
	pruneError prometheus.Counter
	packed     prometheus.Counter
	packedUpTo prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_samples_total",
			Help: "Raw zone samples recorded."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_dropped_total",
			Help: "Raw records dropped because the write buffer was full (roll-ups are kept)."}),
		flushes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crowdwatch_history_flush_seconds",
			Help: "Duration of one write of buffered history.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		flushErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_flush_errors_total",
			Help: "Writes of history that failed; their records stay buffered and are retried."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowdwatch_history_pending_bytes",
			Help: "Bytes of history records waiting to be written."}),
		lastFlush: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowdwatch_history_last_flush_timestamp_seconds",
			Help: "When history was last written (Unix time)."}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_history_pruned_blocks_total",
			Help: "Blocks of history deleted by retention, by resolution."}, []string{"resolution"}),
		pruneError: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_prune_errors_total",
			Help: "Retention passes that failed."}),
		packed: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_packed_blocks_total",
			Help: "Closed blocks of history rewritten packed (format 2), including a format-1 file's in its conversion."}),
		packedUpTo: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowdwatch_history_packed_until_timestamp_seconds",
			Help: "Every closed block of history that starts before this time is packed (Unix time); far behind the last flush while a format-1 file is converted."}),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.dropped, m.flushes, m.flushErrs, m.pending, m.lastFlush, m.pruned, m.pruneError, m.packed, m.packedUpTo)
	}
	return m
}

// NewRecorder checks the options and takes the engine's state as it is now; nothing is
// opened until Run. Make it before devices can report (before MQTT starts), so that on a
// first start every crossing from then on is recorded.
func NewRecorder(src zones.Source, reg prometheus.Registerer, o Options) (*Recorder, error) {
	if o.Path == "" {
		return nil, errors.New("history: no file path")
	}
	if o.Site.Loc == nil {
		o.Site.Loc = time.UTC
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 5 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 15 * time.Second
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 16 << 20
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.LevelOf == nil {
		o.LevelOf = DefaultLevel
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	f := &file{path: o.Path, site: o.Site.ID, zone: o.Site.Loc.String(), timeout: o.LockTimeout, loc: tz{o.Site.Loc}, layout: &o.Site}
	return &Recorder{o: o, src: src, file: f, m: newMetrics(reg), writeCh: make(chan *batch, 1), first: src.Snapshot()}, nil
}

// Run records until ctx ends, then writes what it holds and marks the series as stopped.
func (r *Recorder) Run(ctx context.Context) error {
	c := newCore(r.o.Site, r.o.BufferBytes, func() int { return int(r.held.Load()) })
	c.levelOf = r.o.LevelOf
	st, raw, doors, err := r.load(ctx)
	if err != nil {
		return err
	}
	c.restore(st, raw, doors)

	writerDone := make(chan struct{})
	go func() { defer close(writerDone); r.writer() }()

	signal, unsubscribe := r.src.Subscribe()
	defer unsubscribe()
	sampleT := time.NewTicker(r.o.SampleInterval)
	defer sampleT.Stop()
	flushT := time.NewTicker(r.o.FlushInterval)
	defer flushT.Stop()
	now := func() int64 { return r.o.Now().UnixMilli() }
	status := func() LevelView {
		if r.o.Levels == nil {
			return nil
		}
		return r.o.Levels.LevelView()
	}
	c.observe(now(), r.first, status(), true)
	c.observe(now(), r.src.Snapshot(), status(), true)
	var lastSamples, lastDropped int64
	count := func() {
		r.m.samples.Add(float64(c.samples - lastSamples))
		r.m.dropped.Add(float64(c.dropped - lastDropped))
		lastSamples, lastDropped = c.samples, c.dropped
		r.m.pending.Set(float64(c.pending.size + int(r.held.Load())))
	}
	for {
		select {
		case <-ctx.Done():
			c.observe(now(), r.src.Snapshot(), status(), true)
			c.stop(now())
			count()
			r.writeCh <- c.takeBatch() // the writer drains the channel until it is closed
			close(r.writeCh)
			<-writerDone
			return nil
		case <-signal:
			c.observe(now(), r.src.Snapshot(), status(), false)
		case <-sampleT.C:
			c.observe(now(), r.src.Snapshot(), status(), true)
			count()
		case <-flushT.C:
			c.advance(now())
			select {
			case r.writeCh <- c.takeBatch():
			default:
				// The writer is still on the previous batch; this one waits in pending.
			}
			count()
		}
	}
}

// load reads the state and the raw records needed to resume, retrying while the file is busy.
func (r *Recorder) load(ctx context.Context) (*persisted, map[string][]Sample, map[string][]DoorCount, error) {
	for {
		st, err := r.file.init()
		if err == nil {
			if st == nil {
				return nil, nil, nil, nil
			}
			raw, doors, err := r.resumeBlocks(st.At)
			if err == nil {
				return st, raw, doors, nil
			}
			return nil, nil, nil, err
		}
		if !errors.Is(err, ErrLocked) {
			return nil, nil, nil, err
		}
		r.o.Log.Warn("history: the file is busy; retrying", "path", r.o.Path)
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *Recorder) resumeBlocks(at int64) (map[string][]Sample, map[string][]DoorCount, error) {
	g := gate(r.o.Path)
	g.RLock()
	defer g.RUnlock()
	db, err := openFile(r.o.Path, true, false, r.o.LockTimeout)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	raw, doors := map[string][]Sample{}, map[string][]DoorCount{}
	block := r.file.loc.block(Raw, at)
	log := cmp.Or(r.o.Log, slog.Default())
	err = storage.View(db, func(tx *bolt.Tx) error {
		for _, z := range r.o.Site.Zones {
			if v := getBlock(tx, kindZone, Raw, z.ID, block); v != nil {
				ss, err := decodeSamples(block, v, nil)
				if errors.Is(err, errCorrupt) {
					// The hour's windows are rebuilt from what follows; recording goes on.
					log.Warn("history: a damaged block was left out on resume", "path", r.o.Path, "zone", z.ID, "error", err)
					continue
				}
				if err != nil {
					return err
				}
				raw[z.ID] = ss
			}
		}
		for _, d := range r.o.Site.Doors {
			if v := getBlock(tx, kindDoor, Raw, d.ID, block); v != nil {
				ds, err := decodeDoors(Raw, block, v, nil)
				if errors.Is(err, errCorrupt) {
					log.Warn("history: a damaged block was left out on resume", "path", r.o.Path, "door", d.ID, "error", err)
					continue
				}
				if err != nil {
					return err
				}
				doors[d.ID] = ds
			}
		}
		return nil
	})
	return raw, doors, err
}

// getBlock is a stored block, closed and open parts together (see txq.blocks).
func getBlock(tx *bolt.Tx, kind byte, res Resolution, series string, start int64) []byte {
	var v []byte
	for _, name := range [][]byte{closedName(kind, res), bucketName(kind, res)} {
		if top := tx.Bucket(name); top != nil {
			if bk := top.Bucket([]byte(series)); bk != nil {
				v = append(v, bk.Get(blockKey(start))...)
			}
		}
	}
	return v
}

// writer owns the file's write transactions: it writes each batch, keeps one that failed
// (merging later ones into it) and retries with the next, and prunes on its own schedule.
func (r *Recorder) writer() {
	var held *batch
	// damaged is set once the file is found damaged: writing stops until a restart (after
	// the file is restored), rather than retrying a file that cannot be opened every flush.
	damaged := false
	prune := time.NewTicker(r.o.PruneEvery)
	defer prune.Stop()
	r.prune()
	// Packing closed blocks runs between flushes, a short pass at a time, whenever an hour
	// has closed since the last pass; at start it finishes what a previous run left (all of
	// a format-1 file's blocks, the first time).
	pk := packer{r: r, due: true, started: time.Now()}
	ready := make(chan struct{})
	close(ready)
	write := func(final bool) {
		for attempt := 0; held != nil; attempt++ {
			if damaged {
				held = nil
				break
			}
			t0 := time.Now()
			if held.state != nil {
				pk.saw(held.state.At)
			}
			err := r.file.write(held)
			if err == nil {
				r.m.flushes.Observe(time.Since(t0).Seconds())
				r.m.lastFlush.Set(float64(r.o.Now().Unix()))
				held = nil
				break
			}
			r.m.flushErrs.Inc()
			if errors.Is(err, storage.ErrDamaged) {
				damaged = true
				r.o.Log.Error("history: not recorded from now on; live figures are not affected", "error", err)
				continue
			}
			r.o.Log.Warn("history: cannot write; keeping the records for the next try", "error", err)
			if !final || attempt >= 1 {
				break
			}
		}
		if held != nil {
			r.held.Store(int64(held.size))
		} else {
			r.held.Store(0)
		}
	}
	for {
		var packNow <-chan struct{}
		if pk.due && !damaged {
			packNow = ready
		}
		select {
		case <-packNow:
			pk.pass()
		case b, ok := <-r.writeCh:
			if !ok {
				// Shutdown: a few more tries for what is left, then say what was lost.
				for i := 0; i < 5 && held != nil; i++ {
					write(true)
				}
				if held != nil {
					r.o.Log.Error("history: records lost at shutdown: the file stayed busy", "bytes", held.size)
				}
				return
			}
			if held == nil {
				held = b
			} else {
				held.absorb(b)
			}
			write(false)
		case <-prune.C:
			if !damaged {
				r.prune()
			}
		}
	}
}

// packer runs the packing passes for the writer goroutine, which owns it.
type packer struct {
	r       *Recorder
	due     bool
	hour    int64 // the watermark's hour at the last pass
	started time.Time
	logged  time.Time
	blocks  int
	saved   int64
}

// saw is told the watermark of each write: a new hour closed blocks.
func (p *packer) saw(at int64) {
	if h := p.r.file.loc.hour(at); h != p.hour {
		p.hour, p.due = h, true
	}
}

// pass packs for about 100 ms (it ends after the transaction that reaches it): the writer
// comes back to its flushes between passes.
func (p *packer) pass() {
	r := p.r
	res, err := r.file.pack(context.Background(), 100*time.Millisecond)
	r.m.packed.Add(float64(res.Blocks))
	p.blocks += res.Blocks
	p.saved += res.Saved
	if res.PackedUpTo > 0 {
		r.m.packedUpTo.Set(float64(res.PackedUpTo) / 1000)
	}
	if err != nil {
		p.due = false // again once the next hour closes
		r.o.Log.Warn("history: packing closed blocks failed; it runs again later", "error", err)
		return
	}
	if r.file.converted && time.Since(p.logged) >= 10*time.Second && !res.Done {
		p.logged = time.Now()
		r.o.Log.Info("history: converting the format-1 file: packing closed blocks", "path", r.o.Path,
			"packed_until", time.UnixMilli(res.PackedUpTo).UTC().Format(time.RFC3339), "blocks", p.blocks)
	}
	if res.Done {
		p.due = false
		if r.file.converted {
			r.file.converted = false
			r.o.Log.Info("history: format-1 file converted: every closed block is packed", "path", r.o.Path,
				"blocks", p.blocks, "saved_bytes", p.saved, "took", time.Since(p.started).Round(time.Millisecond))
		}
	}
}

func (r *Recorder) prune() {
	n, err := r.file.prune(context.Background(), r.o.Now(), r.o.Retention, 2000)
	for res, k := range n {
		if k > 0 {
			r.m.pruned.WithLabelValues(res.String()).Add(float64(k))
		}
	}
	if err != nil {
		r.m.pruneError.Inc()
		r.o.Log.Warn("history: retention pass failed; it runs again later", "error", err)
	}
}
