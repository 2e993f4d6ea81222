package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Comparer checks the service's figures against the truth at each checkpoint, through the
// service's HTTP API, and keeps the error statistics per zone.
type Comparer struct {
	URL    string // http://127.0.0.1:8080
	Config *configs.Config
	// Exact makes any difference an error (for faults the protocol recovers from).
	Exact bool
	// Token is sent as "Authorization: Bearer" to a service with sign-in (a manager token).
	Token  string
	client http.Client
	stats  map[string]*ZoneError
}

// ZoneError is the difference service minus truth over the checkpoints of a run.
type ZoneError struct {
	Zone     string
	Capacity int
	N        int
	SumAbs   float64
	MaxAbs   int64
	Last     int64
}

// MeanAbsShare is the mean absolute error as a share of the zone's capacity.
func (z *ZoneError) MeanAbsShare() float64 {
	return z.SumAbs / float64(max(z.N, 1)) / float64(z.Capacity)
}

// MaxAbsShare is the largest absolute error as a share of the zone's capacity.
func (z *ZoneError) MaxAbsShare() float64 { return float64(z.MaxAbs) / float64(z.Capacity) }

// Checkpoint waits until the service shows every device's last report, then compares.
func (c *Comparer) Checkpoint(ctx context.Context, at time.Time, truth map[string]int64, sent map[string]Mark) error {
	if c.stats == nil {
		c.stats = map[string]*ZoneError{}
		for _, z := range c.Config.Zones {
			c.stats[z.ID] = &ZoneError{Zone: z.ID, Capacity: z.Capacity}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lag, err := c.lagging(ctx, sent)
		if err != nil {
			return err
		}
		if lag == "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("checkpoint %s: the service has not applied %s within 30s", at.Format(time.TimeOnly), lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var zones struct {
		Zones []struct {
			ID        string `json:"id"`
			Occupancy int64  `json:"occupancy"`
		} `json:"zones"`
	}
	if err := c.get(ctx, "/api/v1/zones", &zones); err != nil {
		return err
	}
	var diffs []string
	for _, z := range zones.Zones {
		s := c.stats[z.ID]
		if s == nil {
			continue
		}
		d := z.Occupancy - truth[z.ID]
		s.N++
		s.SumAbs += math.Abs(float64(d))
		s.MaxAbs = max(s.MaxAbs, abs(d))
		s.Last = d
		if d != 0 {
			diffs = append(diffs, fmt.Sprintf("%s: service %d, truth %d", z.ID, z.Occupancy, truth[z.ID]))
		}
	}
	if c.Exact && len(diffs) > 0 {
		return fmt.Errorf("checkpoint %s: %s", at.Format(time.TimeOnly), strings.Join(diffs, "; "))
	}
	return nil
}

// lagging names a device whose last report the service has not applied yet ("" if none).
func (c *Comparer) lagging(ctx context.Context, sent map[string]Mark) (string, error) {
	var devs struct {
		Devices []struct {
			ID   string `json:"id"`
			Boot string `json:"boot"`
			Seq  uint64 `json:"seq"`
		} `json:"devices"`
	}
	if err := c.get(ctx, "/api/v1/devices", &devs); err != nil {
		return "", err
	}
	for _, d := range devs.Devices {
		m, ok := sent[d.ID]
		if ok && (d.Boot != m.Boot || d.Seq < m.Seq) {
			return fmt.Sprintf("%s's report %s/%d (it shows %s/%d)", d.ID, m.Boot, m.Seq, d.Boot, d.Seq), nil
		}
	}
	return "", nil
}

func (c *Comparer) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+path, nil)
	if err == nil && c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("compare: GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Errors are the per-zone statistics, in config order.
func (c *Comparer) Errors() []*ZoneError {
	out := make([]*ZoneError, 0, len(c.stats))
	for _, s := range c.stats {
		out = append(out, s)
	}
	order := map[string]int{}
	for i, z := range c.Config.Zones {
		order[z.ID] = i
	}
	sort.Slice(out, func(i, j int) bool { return order[out[i].Zone] < order[out[j].Zone] })
	return out
}

// Table formats the statistics as Markdown.
func (c *Comparer) Table() string {
	var b strings.Builder
	b.WriteString("| zone | capacity | checkpoints | mean abs error | max abs error | mean / capacity | max / capacity | final error |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range c.Errors() {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %d | %.2f%% | %.2f%% | %+d |\n", s.Zone, s.Capacity, s.N,
			s.SumAbs/float64(max(s.N, 1)), s.MaxAbs, 100*s.MeanAbsShare(), 100*s.MaxAbsShare(), s.Last)
	}
	return b.String()
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
