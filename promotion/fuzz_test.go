package promotion

import (
	"bytes"
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
)

// FuzzPlanInput: whatever the API receives as a plan, decoding and validating it never
// panics, and what validates has its times in order.
func FuzzPlanInput(f *testing.F) {
	f.Add([]byte(`{"id":"sale","name":"Sale","kind":"double11","start":"2026-11-11 07:00","end":"2026-11-11 22:00","capacities":{"hall":150},"metered":[{"door":"main","queue":"hall"}]}`))
	f.Add([]byte(`{"id":"x","name":{"zh":"促销","en":"Sale"},"start":"2026-11-11T07:00:00+08:00","end":"2026-11-11T08:00:00+08:00","doors_open":"2026-11-11T07:30:00+08:00"}`))
	f.Add([]byte(`{"id":"x","capacities":{"hall":-1}}`))
	cfg, err := configs.Parse([]byte(assessStore), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodePlanInput(bytes.NewReader(b))
		if err != nil {
			return
		}
		e := in.plan()
		if cfg.CheckEvent(&e) == nil && !e.End.After(e.Start) {
			t.Fatalf("accepted a plan that ends before it starts: %+v", e)
		}
	})
}
