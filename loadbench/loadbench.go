// Package loadbench is the load tool behind `crowdwatch bench`: it drives counters
// through a broker into a child crowdwatch service and out to WebSocket clients, against the
// bare broker. It is not part of the service. docs/benchmarks.md.
package loadbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	cwauth "github.com/crowdwatch/crowdwatch/web/auth"
)

// Options bound one load run (`crowdwatch bench`, docs/benchmarks.md).
type Options struct {
	Devices, Clients, Zones int
	Rate                    float64 // reports per second per counter; 0: each as soon as the previous is acknowledged
	Duration                time.Duration
	Broker                  string // embedded or mosquitto
	Baseline                bool   // also run the same load against the bare broker
	Measure                 int    // clients that decode every message and measure latency
	Profile                 string // directory for the service's CPU and heap profiles, or ""
	// Service is the crowdwatch binary run as a child `serve` (default: this process's own).
	Service string
}

// Check refuses a run outside the tool's bounds.
func (f Options) Check() error {
	if f.Devices < 1 || f.Devices > f.Zones || f.Zones > 5000 || f.Clients < 0 || f.Clients > 5000 {
		return errors.New("bench: need 1 <= --devices <= --zones <= 5000 and 0 <= --clients <= 5000")
	}
	if f.Duration <= 0 || f.Duration > 10*time.Minute || f.Rate < 0 {
		return errors.New("bench: --duration must be in (0, 10m] and --rate >= 0 (0: as fast as acknowledged)")
	}
	return nil
}

// latHist is a latency histogram in 100 µs buckets up to 10 s.
type latHist struct {
	b   [100001]atomic.Int64
	max atomic.Int64
}

func (h *latHist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / (100 * time.Microsecond))
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i].Add(1)
	for m := h.max.Load(); int64(d) > m && !h.max.CompareAndSwap(m, int64(d)); m = h.max.Load() {
	}
}

func (h *latHist) quantile(q float64) time.Duration {
	var n int64
	for i := range h.b {
		n += h.b[i].Load()
	}
	if n == 0 {
		return 0
	}
	want, seen := int64(q*float64(n)+0.5), int64(0)
	for i := range h.b {
		if seen += h.b[i].Load(); seen >= want && seen > 0 {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return time.Duration(h.max.Load())
}

func (h *latHist) count() int64 {
	var n int64
	for i := range h.b {
		n += h.b[i].Load()
	}
	return n
}

func (h *latHist) String() string {
	return fmt.Sprintf("p50 %s p99 %s max %s (%d samples)", h.quantile(0.5), h.quantile(0.99),
		time.Duration(h.max.Load()).Round(100*time.Microsecond), h.count())
}

// pubTimes records when each (device, seq) report was first published.
type pubTimes [][]atomic.Int64

func newPubTimes(devices, perDevice int) pubTimes {
	p := make(pubTimes, devices)
	for i := range p {
		p[i] = make([]atomic.Int64, perDevice+1)
	}
	return p
}

func (p pubTimes) at(dev, seq int) int64 {
	if dev < 0 || dev >= len(p) || seq <= 0 || seq >= len(p[dev]) {
		return 0
	}
	return p[dev][seq].Load()
}

// drive runs the publishers until the duration ends or the count is reached; it returns
// the reports acknowledged and the time taken.
func drive(ctx context.Context, url, topicBase string, f Options, times pubTimes) (int64, time.Duration, error) {
	var acked atomic.Int64
	var wg sync.WaitGroup
	perDevice := len(times[0]) - 1
	start := time.Now()
	errs := make(chan error, f.Devices)
	boot := fmt.Sprintf("bench-%d", start.UnixNano())
	for d := range f.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("dev-%04d", d)
			cl := paho.NewClient(device.Options(url, "bench-"+id).SetUsername(id))
			if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("bench: counter %s cannot connect to %s: %v", id, url, tok.Error())
				return
			}
			defer cl.Disconnect(100)
			var tick <-chan time.Time
			if f.Rate > 0 {
				t := time.NewTicker(time.Duration(float64(time.Second) / f.Rate))
				defer t.Stop()
				tick = t.C
			}
			for seq := 1; seq <= perDevice && time.Since(start) < f.Duration; seq++ {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				now := time.Now()
				times[d][seq].Store(now.UnixNano())
				p := fmt.Sprintf(`{"boot":%q,"seq":%d,"ts":%q,"in":%d,"out":0}`, boot, seq, now.UTC().Format(time.RFC3339Nano), seq)
				if err := device.PublishAcked(ctx, cl, topicBase+id, []byte(p)); err != nil {
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		return acked.Load(), el, err
	default:
	}
	return acked.Load(), el, nil
}

// procStat reads a process's CPU time (user+system) and peak RSS from /proc.
func procStat(pid int) (cpu time.Duration, peakRSS int64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			fs := strings.Fields(s[i+2:])
			if len(fs) > 13 {
				u, _ := strconv.ParseInt(fs[11], 10, 64)
				k, _ := strconv.ParseInt(fs[12], 10, 64)
				cpu = time.Duration(u+k) * time.Second / 100 // USER_HZ is 100 on Linux
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fs := strings.Fields(l)
				kb, _ := strconv.ParseInt(fs[1], 10, 64)
				peakRSS = kb << 10
			}
		}
	}
	return cpu, peakRSS
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startMosquittoBench runs mosquitto with persistence on a free loopback port.
func startMosquittoBench(dir string) (addr string, pid int, stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return "", 0, nil, fmt.Errorf("bench: mosquitto is not installed (.ci/install-deps installs it): %w", err)
	}
	if addr, err = freeLoopback(); err != nil {
		return "", 0, nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("user root\nlistener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n", port, dir)), 0o600); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("bench: starting mosquitto: %w", err)
	}
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr, cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return "", 0, nil, errors.New("bench: mosquitto did not listen within 5s")
}

var benchReady = regexp.MustCompile(`msg="crowdwatch ready".* http=(\S+) mqtt=(\S+)`)

// Run measures the whole path on loopback: N counters through a broker into a crowdwatch
// service (a child process, Options.Service) and out to M WebSocket clients, then the same
// publishers through the same kind of broker to a bare subscriber. It writes its results to out.
func Run(ctx context.Context, out io.Writer, f Options) error {
	dir, err := os.MkdirTemp("", "crowdwatch-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	perDevice := 1 << 20
	if f.Rate > 0 {
		perDevice = int(f.Rate*f.Duration.Seconds()) + 10
	}
	fmt.Fprintf(out, "bench: %d counters at %s each, %d WebSocket clients (%d measuring), %d zones, %s per phase, broker %s\n",
		f.Devices, rateString(f.Rate), f.Clients, min(f.Measure, f.Clients), f.Zones, f.Duration, f.Broker)

	var brokerURL string
	mqPID := 0
	if f.Broker == "mosquitto" {
		addr, pid, stopMQ, err := startMosquittoBench(dir)
		if err != nil {
			return err
		}
		defer stopMQ()
		brokerURL, mqPID = "tcp://"+addr, pid
	} else if f.Broker != "embedded" {
		return fmt.Errorf("bench: --broker %q must be embedded or mosquitto", f.Broker)
	}
	topicBase := "crowdwatch/bench/counter/"

	// Phase 1: the bare broker and a subscriber that only notes arrival times.
	if f.Baseline {
		url := brokerURL
		if url == "" {
			srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
			_ = srv.AddHook(new(auth.AllowHook), nil)
			addr, err := freeLoopback()
			if err != nil {
				return err
			}
			if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "bare", Address: addr})); err != nil {
				return err
			}
			go srv.Serve()
			defer srv.Close()
			url = "tcp://" + addr
			time.Sleep(100 * time.Millisecond)
		}
		times := newPubTimes(f.Devices, perDevice)
		var lat latHist
		var got atomic.Int64
		sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-bare-sub").SetOrderMatters(false))
		if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("bench: bare subscriber cannot connect: %v", tok.Error())
		}
		tok := sub.Subscribe(topicBase+"#", 1, func(_ paho.Client, m paho.Message) {
			now := time.Now().UnixNano()
			got.Add(1)
			d, _ := strconv.Atoi(strings.TrimPrefix(m.Topic(), topicBase+"dev-"))
			if t := times.at(d, seqOf(m.Payload())); t > 0 {
				lat.add(time.Duration(now - t))
			}
		})
		tok.WaitTimeout(5 * time.Second)
		cpu0, _ := procStat(pidOr(mqPID))
		acked, el, err := drive(ctx, url, topicBase, f, times)
		cpu1, rss := procStat(pidOr(mqPID))
		time.Sleep(500 * time.Millisecond)
		sub.Disconnect(100)
		if err != nil {
			return err
		}
		who := "bench process (embedded broker, publishers, subscriber)"
		if mqPID != 0 {
			who = "mosquitto"
		}
		fmt.Fprintf(out, "bare %s: %d acknowledged in %s = %.0f msgs/s; delivered %d; publish-to-subscriber %s; CPU %s = %.2f s per 10k (%s); peak RSS %d MB\n",
			f.Broker, acked, el.Round(time.Millisecond), float64(acked)/el.Seconds(), got.Load(), &lat,
			(cpu1 - cpu0).Round(10*time.Millisecond), per10k(cpu1-cpu0, acked), who, rss>>20)
	}

	// Phase 2: the service.
	token, sum, err := cwauth.NewToken()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchStore(f, brokerURL, sum, filepath.Join(dir, "bench.db"))), 0o600); err != nil {
		return err
	}
	exe := f.Service
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	svc := exec.CommandContext(ctx, exe, "serve", "--config", cfgPath)
	stderr, err := svc.StderrPipe()
	if err != nil {
		return err
	}
	if err := svc.Start(); err != nil {
		return fmt.Errorf("bench: starting the service: %w", err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := benchReady.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [2]string{m[1], m[2]}
			} else if strings.Contains(sc.Text(), "level=ERROR") {
				fmt.Fprintln(os.Stderr, "service:", sc.Text())
			}
		}
	}()
	var httpAddr, mqttAddr string
	select {
	case a := <-ready:
		httpAddr, mqttAddr = a[0], a[1]
	case <-time.After(30 * time.Second):
		return errors.New("bench: the service was not ready within 30s")
	}
	url := brokerURL
	if url == "" {
		url = "tcp://" + mqttAddr
	}
	times := newPubTimes(f.Devices, perDevice)
	var lat latHist
	var dropped, msgs, wsBytes atomic.Int64
	wsCtx, stopWS := context.WithCancel(ctx)
	defer stopWS()
	var wsWG sync.WaitGroup
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	for c := range f.Clients {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+httpAddr+"/api/v1/live", hdr)
		if err != nil {
			stopWS()
			return fmt.Errorf("bench: WebSocket client %d: %w", c, err)
		}
		wsWG.Add(1)
		go func() {
			defer wsWG.Done()
			defer conn.Close()
			go func() { <-wsCtx.Done(); conn.Close() }()
			last := make([]int, f.Devices)
			measure := c < f.Measure
			for {
				if !measure {
					// Read the whole frame and throw it away: the service's cost of this
					// client without the bench process paying for decoding it.
					_, r, err := conn.NextReader()
					if err == nil {
						var n int64
						n, err = io.Copy(io.Discard, r)
						wsBytes.Add(n)
					}
					if err != nil {
						if wsCtx.Err() == nil {
							dropped.Add(1)
						}
						return
					}
					msgs.Add(1)
					continue
				}
				_, data, err := conn.ReadMessage()
				if err != nil {
					if wsCtx.Err() == nil {
						dropped.Add(1)
					}
					return
				}
				now := time.Now().UnixNano()
				msgs.Add(1)
				wsBytes.Add(int64(len(data)))
				var m struct {
					Zones []struct {
						ID        string `json:"id"`
						Occupancy int    `json:"occupancy"`
					} `json:"zones"`
				}
				if json.Unmarshal(data, &m) != nil {
					continue
				}
				for _, z := range m.Zones {
					d, err := strconv.Atoi(strings.TrimPrefix(z.ID, "z"))
					if err != nil || d >= f.Devices {
						continue
					}
					// Every report between the last value seen and this one reached the
					// screen now (the feed coalesces).
					for v := last[d] + 1; v <= z.Occupancy && v-last[d] <= 100000; v++ {
						if t := times.at(d, v); t > 0 {
							lat.add(time.Duration(now - t))
						}
					}
					if z.Occupancy > last[d] {
						last[d] = z.Occupancy
					}
				}
			}
		}()
	}
	pid := svc.Process.Pid
	profiled := make(chan error, 1)
	if f.Profile != "" {
		go func() {
			secs := max(1, int(f.Duration.Seconds()))
			profiled <- saveProfile(ctx, httpAddr, token, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(f.Profile, "cpu.pb.gz"))
		}()
	}
	cpu0, _ := procStat(pid)
	commits0 := commitStats(httpAddr, token)
	acked, el, err := drive(ctx, url, topicBase, f, times)
	cpu1, rss := procStat(pid)
	end := commitStats(httpAddr, token)
	commits := end.minus(commits0)
	if err != nil {
		stopWS()
		return err
	}
	if f.Profile != "" {
		if err := <-profiled; err != nil {
			return err
		}
		if err := saveProfile(ctx, httpAddr, token, "/debug/pprof/heap", filepath.Join(f.Profile, "heap.pb.gz")); err != nil {
			return err
		}
		fmt.Fprintf(out, "profiles: go tool pprof %s %s\n", exe, filepath.Join(f.Profile, "cpu.pb.gz"))
	}
	time.Sleep(time.Second) // the feed's last tick
	stopWS()
	wsWG.Wait()
	applied, err := doorTotals(httpAddr, token)
	if err != nil {
		return err
	}
	// Through an external broker the counters' rate is the broker's PUBACK and the service
	// may still be working through its queue: wait (at most 20 s) for it to catch up, so a
	// lag is told from a loss.
	lagged, caughtUp := applied < acked, time.Duration(0)
	for waited := time.Duration(0); applied < acked && waited < 20*time.Second; waited += 200 * time.Millisecond {
		time.Sleep(200 * time.Millisecond)
		if applied, err = doorTotals(httpAddr, token); err != nil {
			return err
		}
		caughtUp = time.Second + waited + 200*time.Millisecond
	}
	if lagged {
		fmt.Fprintf(out, "service behind at 1 s after the last report; applied %d of %d after %s\n", applied, acked, caughtUp)
	}
	fmt.Fprintf(out, "service on %s: %d acknowledged in %s = %.0f msgs/s; crossings applied %d (lost %d); publish-to-WebSocket %s; %d WebSocket messages (%.1f KB each on average), %d clients dropped; service CPU %s = %.2f s per 10k; service peak RSS %d MB\n",
		f.Broker, acked, el.Round(time.Millisecond), float64(acked)/el.Seconds(), applied, acked-applied, &lat,
		msgs.Load(), float64(wsBytes.Load())/float64(max(1, msgs.Load()))/1024, dropped.Load(), (cpu1 - cpu0).Round(10*time.Millisecond), per10k(cpu1-cpu0, acked), rss>>20)
	fmt.Fprintf(out, "service commits: %s\n", commits)
	fmt.Fprintf(out, "service memory at the end of the load: %s\n", end.mem)
	return nil
}

// commits are the service's group commits as its /metrics count them, and what its Go
// runtime said about its memory at the same moment.
type commits struct {
	n, seconds, messages float64
	mem                  memory
}

// memory is the Go runtime's account of the service's memory (client_golang's Go collector):
// where a peak RSS went, heap or goroutine stacks.
type memory struct{ heapInuse, stackInuse, sys, goroutines float64 }

func (m memory) String() string {
	if m.sys == 0 {
		return "not read"
	}
	return fmt.Sprintf("heap in use %.0f MB, goroutine stacks %.0f MB (%.0f goroutines), from the OS %.0f MB",
		m.heapInuse/(1<<20), m.stackInuse/(1<<20), m.goroutines, m.sys/(1<<20))
}

func (c commits) minus(o commits) commits {
	return commits{c.n - o.n, c.seconds - o.seconds, c.messages - o.messages, c.mem}
}

func (c commits) String() string {
	if c.n <= 0 {
		return "none counted"
	}
	return fmt.Sprintf("%.0f, %.1f messages and %.2f ms each on average", c.n, c.messages/c.n, c.seconds/c.n*1000)
}

// commitStats reads the commit histograms' sums and counts (zeros when /metrics cannot be read:
// the figure is then "none counted", the run itself stands).
func commitStats(httpAddr, token string) commits {
	var c commits
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "crowdwatch_storage_commit_seconds_count":
			c.n = v
		case "crowdwatch_storage_commit_seconds_sum":
			c.seconds = v
		case "crowdwatch_storage_commit_messages_sum":
			c.messages = v
		case "go_memstats_heap_inuse_bytes":
			c.mem.heapInuse = v
		case "go_memstats_stack_inuse_bytes":
			c.mem.stackInuse = v
		case "go_memstats_sys_bytes":
			c.mem.sys = v
		case "go_goroutines":
			c.mem.goroutines = v
		}
	}
	return c
}

func pidOr(pid int) int {
	if pid == 0 {
		return os.Getpid()
	}
	return pid
}

func per10k(cpu time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return cpu.Seconds() * 10000 / float64(n)
}

func rateString(r float64) string {
	if r == 0 {
		return "as fast as acknowledged"
	}
	return fmt.Sprintf("%g/s", r)
}

// seqOf finds "seq":N in a report without decoding it all.
func seqOf(p []byte) int {
	s := string(p)
	i := strings.Index(s, `"seq":`)
	if i < 0 {
		return 0
	}
	s = s[i+6:]
	j := strings.IndexByte(s, ',')
	if j < 0 {
		return 0
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}

// benchStore is a generated store: zones z0000... each with one door from outside and one counter.
func benchStore(f Options, brokerURL, tokenSHA, dbPath string) string {
	var b strings.Builder
	// All the bench's feed clients are one token on one address: lift the feed's limits
	// (docs/security.md) to what --clients allows.
	fmt.Fprintf(&b, "site: {id: bench, name: Bench store}\nhttp: {listen: \"127.0.0.1:0\", feed: {max_per_user: 5000, max_per_address: 5000, max_total: 5000}}\nstorage: {path: %q}\n", dbPath)
	if brokerURL != "" {
		fmt.Fprintf(&b, "mqtt: {broker: %q, client_id: crowdwatch-bench}\n", brokerURL)
	} else {
		// Every counter connects from loopback: the per-address limit must let them all in.
		fmt.Fprintf(&b, "mqtt: {embedded: {listen: \"127.0.0.1:0\", max_connections: %d, max_connections_per_address: %d}}\n",
			f.Devices+100, f.Devices+100)
	}
	fmt.Fprintf(&b, "occupancy: {daily_reset: \"off\"}\nauth:\n  tokens: [{name: bench, sha256: %q, role: admin}]\nzones:\n", tokenSHA)
	for z := range f.Zones {
		fmt.Fprintf(&b, "  - {id: z%04d, capacity: 10000000}\n", z)
	}
	b.WriteString("doors:\n")
	for d := range f.Devices {
		fmt.Fprintf(&b, "  - {id: d%04d, from: outside, to: z%04d, counter: {device: dev-%04d, line: \"1\"}}\n", d, d, d)
	}
	return b.String()
}

// saveProfile fetches one of the service's pprof profiles into a file.
func saveProfile(ctx context.Context, httpAddr, token, path, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("bench: --profile: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: fetching %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: fetching %s: HTTP %d", path, resp.StatusCode)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("bench: fetching %s: %w", path, err)
	}
	return os.WriteFile(file, data, 0o644)
}

// doorTotals sums the crossings in over all doors.
func doorTotals(httpAddr, token string) (int64, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/api/v1/doors", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: reading door totals: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Doors []struct {
			In int64 `json:"in"`
		} `json:"doors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("bench: decoding door totals (HTTP %d): %w", resp.StatusCode, err)
	}
	var n int64
	for _, d := range body.Doors {
		n += d.In
	}
	return n, nil
}
