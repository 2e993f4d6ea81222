package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
)

// simDevice is one counter or area sensor: it counts what the crowd does (with its errors),
// reports on its own interval in simulated time, and misbehaves as the faults say.
type simDevice struct {
	id       string
	sensor   bool
	zone     string // sensors
	width    int
	interval bool // period_in/period_out reports
	every    time.Duration
	nextAt   time.Time
	faults   scenario.Faults
	rng      *rand.Rand

	runTag   string // this run's part of every boot id (Options.BootTag)
	boot     string
	boots    int
	seq      uint64
	totals   map[string][2]uint64 // counted since boot, per line
	sent     map[string][2]uint64 // covered by interval reports already made
	held     []outbound           // a report held back to be sent after the next one
	offUntil time.Time
	backlog  []outbound // interval reports made while offline, sent on return

	// enc, when set, makes the reports in a vendor's format (Options.Format, Formats)
	// instead of the native protocol; over HTTP they are posted to pushURL with token.
	enc            encode.Encoder
	format         string
	pushURL, token string
	log            *slog.Logger

	topic, status string
	out           chan outbound
	done          chan struct{}
	client        paho.Client
	// Published is how many reports went out (acknowledged), for the run's summary.
	published, duplicates, malformed, reboots, offlines, refused int
	lastSeq                                                      uint64
}

// outbound is one thing for the device's connection goroutine to do, in order.
type outbound struct {
	payload     []byte
	topic       string // default: the device's report topic
	contentType string // HTTP push
	broken      bool   // a malformed report made on purpose: its refusal is expected
	disconnect  bool
	connect     bool
	flushed     chan struct{}
}

func (d *simDevice) startBoot(now time.Time, wrap16 bool) {
	d.boots++
	d.boot = fmt.Sprintf("%s-%d-%d", d.id, now.Unix(), d.boots)
	if d.runTag != "" {
		d.boot = fmt.Sprintf("%s-%s-%d", d.id, d.runTag, d.boots)
	}
	d.seq = 0
	for l := range d.totals {
		var start uint64
		if wrap16 && d.width == 16 && d.enc == nil {
			// Near the top of a 16-bit counter, equal in both directions so the first report
			// moves nobody, and the counter wraps within minutes.
			start = 65535 - uint64(d.rng.IntN(200))
		}
		d.totals[l] = [2]uint64{start, start}
		d.sent[l] = d.totals[l]
	}
}

// count records crossings as the sensor head sees them: each may be missed, and extra ones
// may appear, at the scenario's rates.
func (d *simDevice) count(line string, in, out uint64) {
	f := d.faults
	in, out = thin(d.rng, in, f.MissIn), thin(d.rng, out, f.MissOut)
	if f.Extra > 0 {
		in += uint64(binomial(d.rng, int(in)+1, f.Extra))
		out += uint64(binomial(d.rng, int(out)+1, f.Extra))
	}
	t := d.totals[line]
	t[0], t[1] = t[0]+in, t[1]+out
	d.totals[line] = t
}

func thin(rng *rand.Rand, n uint64, miss float64) uint64 {
	if miss <= 0 || n == 0 {
		return n
	}
	return n - uint64(binomial(rng, int(n), miss))
}

func binomial(rng *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// report makes the device's next report at simulated time now and queues it with its faults.
func (d *simDevice) report(now time.Time, occupancy int64) {
	f := d.faults
	if !d.offUntil.IsZero() {
		if now.Before(d.offUntil) {
			if d.keepsThroughOutage() {
				// Interval firmware keeps its reports and back-fills them on return.
				d.backlog = append(d.backlog, d.payloads(now, occupancy)...)
			}
			return
		}
		d.reconnect()
	}
	msgs := d.payloads(now, occupancy)
	if f.Reorder > 0 && d.held == nil && len(msgs) > 0 && d.rng.Float64() < f.Reorder {
		d.held = msgs
		return
	}
	d.queue(msgs...)
	if d.held != nil {
		d.queue(d.held...)
		d.held = nil
	}
	if f.Duplicate > 0 && len(msgs) > 0 && d.rng.Float64() < f.Duplicate {
		d.queue(msgs...)
		d.duplicates++
	}
	if f.Malformed > 0 && d.rng.Float64() < f.Malformed {
		d.queue(d.broken())
		d.malformed++
	}
	perReport := d.every.Hours()
	if f.RebootPerHour > 0 && d.held == nil && d.rng.Float64() < f.RebootPerHour*perReport &&
		(d.enc == nil || d.enc.ResetDetectable(d.totals)) {
		// Right after a report, so the reboot loses nothing that was counted. A vendor's
		// device without a boot id is reset instead (its totals restart from zero), and only
		// where the format lets the reset be told from its next report.
		d.startBoot(now, false)
		if d.enc != nil {
			d.enc.Reset(now)
		}
		d.reboots++
	}
	if f.OfflinePerHr > 0 && d.held == nil && d.rng.Float64() < f.OfflinePerHr*perReport {
		d.offUntil = now.Add(f.OfflineFor)
		d.out <- outbound{disconnect: true}
		d.offlines++
	}
}

// reconnect ends an outage: connect first, then the back-filled reports in order.
func (d *simDevice) reconnect() {
	d.offUntil = time.Time{}
	d.out <- outbound{connect: true}
	d.queue(d.backlog...)
	d.backlog = nil
}

// heartbeat says the device is alive, on its status topic, unless it is offline.
func (d *simDevice) heartbeat(now time.Time) {
	if !d.offUntil.IsZero() || d.enc != nil { // vendors' devices have no status topic
		return
	}
	b, _ := json.Marshal(map[string]any{"ts": now.UTC().Format(time.RFC3339), "boot": d.boot, "seq": d.seq})
	d.out <- outbound{payload: b, topic: d.status}
}

// settle ends any outage and reports everything counted so far, without faults.
func (d *simDevice) settle(now time.Time, occupancy int64) {
	if !d.offUntil.IsZero() {
		d.reconnect()
	}
	d.queue(d.payloads(now, occupancy)...)
	if d.held != nil {
		d.queue(d.held...)
		d.held = nil
	}
}

func (d *simDevice) queue(msgs ...outbound) {
	for _, m := range msgs {
		d.out <- m
	}
}

// keepsThroughOutage says the device stores the reports it makes while offline.
func (d *simDevice) keepsThroughOutage() bool {
	if d.enc != nil {
		return d.enc.Interval()
	}
	return d.interval && !d.sensor
}

// payloads is the device's report at now: the native protocol's one message, or the
// vendor's.
func (d *simDevice) payloads(now time.Time, occupancy int64) []outbound {
	if d.enc == nil {
		return []outbound{{payload: d.payload(now, occupancy)}}
	}
	var out []outbound
	for _, m := range d.enc.Report(now, d.totals, occupancy) {
		out = append(out, outbound{payload: m.Body, topic: m.Topic, contentType: m.ContentType})
	}
	return out
}

// broken is a malformed report in the device's format, cut off mid-message.
func (d *simDevice) broken() outbound {
	if d.enc == nil {
		return outbound{payload: []byte(`{"boot":"` + d.boot + `","seq":`), broken: true}
	}
	m := d.enc.Malformed()
	return outbound{payload: m.Body, topic: m.Topic, contentType: m.ContentType, broken: true}
}

func (d *simDevice) payload(now time.Time, occupancy int64) []byte {
	d.seq++
	d.lastSeq = d.seq
	msg := map[string]any{"boot": d.boot, "seq": d.seq, "ts": now.Add(d.faults.ClockSkew).UTC().Format(time.RFC3339Nano)}
	if d.sensor {
		msg["count"] = occupancy
		b, _ := json.Marshal(msg)
		return b
	}
	lines := map[string]map[string]uint64{}
	for _, l := range slices.Sorted(maps.Keys(d.totals)) {
		t := d.totals[l]
		mask := uint64(math.MaxUint64)
		if d.width < 64 {
			mask = 1<<d.width - 1
		}
		if d.interval {
			s := d.sent[l]
			lines[l] = map[string]uint64{"period_in": t[0] - s[0], "period_out": t[1] - s[1]}
			d.sent[l] = t
		} else {
			lines[l] = map[string]uint64{"in": t[0] & mask, "out": t[1] & mask}
		}
	}
	if len(lines) == 1 && lines["1"] != nil {
		for k, v := range lines["1"] {
			msg[k] = v
		}
	} else {
		msg["lines"] = lines
	}
	b, _ := json.Marshal(msg)
	return b
}

// run owns the device's MQTT connection: it sends queued reports in order, each until the
// broker acknowledges it, and goes offline and back when told.
func (d *simDevice) run(ctx context.Context, broker, user, pass string) {
	if d.enc != nil && d.enc.Transport() == encode.HTTP {
		d.runHTTP(ctx)
		return
	}
	defer close(d.done)
	opts := device.Options(broker, "sim-"+d.id).SetUsername(user).SetPassword(pass)
	if d.enc == nil {
		opts = opts.SetWill(d.status, "offline", 1, true).
			SetOnConnectHandler(func(cl paho.Client) { cl.Publish(d.status, 1, true, "online") })
	}
	d.client = paho.NewClient(opts)
	d.client.Connect().WaitTimeout(3 * time.Second)
	defer d.client.Disconnect(100)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-d.out:
			switch {
			case o.flushed != nil:
				close(o.flushed)
			case o.disconnect:
				if d.enc == nil {
					d.client.Publish(d.status, 1, true, "offline").WaitTimeout(time.Second)
				}
				d.client.Disconnect(50)
			case o.connect:
				d.client.Connect().WaitTimeout(3 * time.Second)
			default:
				topic := d.topic
				if o.topic != "" {
					topic = o.topic
				}
				if err := device.PublishAcked(ctx, d.client, topic, o.payload); err != nil {
					return
				}
				if o.topic != d.status {
					d.published++
				}
			}
		}
	}
}

// runHTTP is a push device's connection: it posts queued reports in order, each until the
// service answers. 2xx means committed; a 4xx refusal is final (logged, never re-sent); a 5xx
// or a network error is retried with the same body, as the firmware does.
func (d *simDevice) runHTTP(ctx context.Context) {
	defer close(d.done)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-d.out:
			switch {
			case o.flushed != nil:
				close(o.flushed)
			case o.disconnect, o.connect:
				// An HTTP device just stops posting while it is offline.
			default:
				if err := d.post(ctx, client, o); err != nil {
					return
				}
			}
		}
	}
}

func (d *simDevice) post(ctx context.Context, client *http.Client, o outbound) error {
	wait := 100 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.pushURL, bytes.NewReader(o.payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", o.contentType)
		if d.token != "" {
			req.Header.Set("Authorization", "Bearer "+d.token)
		}
		resp, err := client.Do(req)
		if err == nil {
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				d.published++
				return nil
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				level := slog.LevelWarn
				if o.broken {
					level = slog.LevelDebug // refused, as it should be
				}
				d.log.Log(ctx, level, "report refused; not sent again", "device", d.id, "format", d.format,
					"status", resp.StatusCode, "answer", string(bytes.TrimSpace(answer)))
				d.refused++
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("report not committed: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// flush waits until everything queued so far has been acknowledged.
func (d *simDevice) flush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case d.out <- outbound{flushed: ch}:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return fmt.Errorf("device %s stopped", d.id)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return fmt.Errorf("device %s stopped", d.id)
	}
}
