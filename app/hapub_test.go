package app

import "testing"

// TestWithTerm: a JSON object gets the leader's term; anything else is sent unchanged.
func TestWithTerm(t *testing.T) {
	for in, want := range map[string]string{
		`{"zone":"hall","occupancy":3}`: `{"term":7,"zone":"hall","occupancy":3}`,
		`{}`:                            `{"term":7}`,
		` { "a":1 }`:                    `{"term":7, "a":1 }`,
		`online`:                        `online`,
		`[1,2]`:                         `[1,2]`,
		``:                              ``,
	} {
		if got := string(withTerm([]byte(in), 7)); got != want {
			t.Errorf("withTerm(%q) = %q, want %q", in, got, want)
		}
	}
}
