package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

const officerToken = "officer-token-0123456789"

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+officerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

type alertList struct {
	Alerts []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		AckBy string `json:"ack_by"`
	} `json:"alerts"`
}

func alertState(t *testing.T, addr, id string) string {
	var l alertList
	getJSON(t, "http://"+addr+"/api/v1/alerts?state=open", officerToken, &l)
	for _, a := range l.Alerts {
		if a.ID == id {
			return a.State
		}
	}
	return ""
}

func evacuating(t *testing.T, addr string) int {
	var v struct {
		Evacuations []any `json:"evacuations"`
	}
	getJSON(t, "http://"+addr+"/api/v1/evacuation", officerToken, &v)
	return len(v.Evacuations)
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHAActionsReachBoth: an evacuation declared on one instance and its alert acknowledged on
// the other are applied on both, each answering once it applied it; with the coordinator down
// an acknowledgement is refused with 503 and an evacuation is applied locally at once, and
// reaches the other instance when the coordinator is back.
func TestHAActionsReachBoth(t *testing.T) {
	e := testkit.Etcd(t)
	addrA, _ := haApp(t, e, "a", "manager-token-0123456789")
	addrB, _ := haApp(t, e, "b", "manager-token-0123456789")

	code, body := post(t, "http://"+addrA+"/api/v1/evacuation", `{"zone": "store", "reason": "smoke at the main door"}`)
	if code != 200 {
		t.Fatalf("declare on a: %d %v", code, body)
	}
	// a answered after applying it; b applies it from the log.
	if n := evacuating(t, addrA); n != 1 {
		t.Fatalf("a answered the declaration before applying it: %d evacuations", n)
	}
	until(t, "b applies the evacuation", func() bool { return evacuating(t, addrB) == 1 })
	const id = "evacuation:store"
	until(t, "the evacuation alert on both", func() bool { return alertState(t, addrA, id) == "firing" && alertState(t, addrB, id) == "firing" })
	if code, body := post(t, "http://"+addrB+"/api/v1/alerts/"+id+"/ack", `{"note": "on it"}`); code != 200 || body["state"] != "acknowledged" {
		t.Fatalf("ack on b: %d %v", code, body)
	}
	until(t, "a applies the acknowledgement", func() bool { return alertState(t, addrA, id) == "acknowledged" })
	if code, body := post(t, "http://"+addrA+"/api/v1/evacuation/stand-down", `{"zone": "store", "reason": "false alarm"}`); code != 200 {
		t.Fatalf("stand down on a: %d %v", code, body)
	}
	until(t, "b stands down", func() bool { return evacuating(t, addrB) == 0 })

	// A plan change made on b is on a too, with b's answer.
	if code, body := post(t, "http://"+addrB+"/api/v1/events", `{"id":"sale","start":"2031-11-27 08:00","end":"2031-11-27 20:00","capacities":{"store":80}}`); code != 201 || body["id"] != "sale" {
		t.Fatalf("plan on b: %d %v", code, body)
	}
	hasPlan := func(addr string) bool {
		var v struct {
			Plans []struct {
				ID string `json:"id"`
			} `json:"plans"`
		}
		getJSON(t, "http://"+addr+"/api/v1/events", officerToken, &v)
		return len(v.Plans) == 1 && v.Plans[0].ID == "sale"
	}
	until(t, "a applies the plan", func() bool { return hasPlan(addrA) })
	if code, body := post(t, "http://"+addrA+"/api/v1/events", `{"id":"sale","start":"2031-11-28 08:00","end":"2031-11-28 20:00"}`); code != http.StatusConflict {
		t.Fatalf("a second plan of the same id on a: %d %v, want 409 (the refusal is the command's)", code, body)
	}

	e.Pause()
	code, body = post(t, "http://"+addrA+"/api/v1/alerts/ack", `{"zone": "store"}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("ack with the coordinator down: %d %v, want 503", code, body)
	}
	if code, body := post(t, "http://"+addrA+"/api/v1/evacuation", `{"zone": "", "reason": "fire"}`); code != 200 {
		t.Fatalf("evacuation with the coordinator down: %d %v, want it applied here", code, body)
	}
	if n := evacuating(t, addrA); n != 1 {
		t.Fatalf("the evacuation was not applied locally at once: %d", n)
	}
	if n := evacuating(t, addrB); n != 0 {
		t.Fatalf("b has %d evacuations while the coordinator is down", n)
	}
	e.Resume()
	until(t, "b applies the evacuation once the coordinator is back", func() bool { return evacuating(t, addrB) == 1 })
	if n := evacuating(t, addrA); n != 1 {
		t.Fatalf("a has %d evacuations after the log applied its own again, want 1", n)
	}
	// Appended late, it carries its declaration's time: the same start everywhere.
	if atA, atB := evacuationAt(t, addrA), evacuationAt(t, addrB); atA == "" || atA != atB {
		t.Fatalf("the late evacuation starts at %q on a, %q on b; want a's declaration time on both", atA, atB)
	}
}

func evacuationAt(t *testing.T, addr string) string {
	var v struct {
		Evacuations []struct {
			At string `json:"at"`
		} `json:"evacuations"`
	}
	getJSON(t, "http://"+addr+"/api/v1/evacuation", officerToken, &v)
	if len(v.Evacuations) != 1 {
		return ""
	}
	return v.Evacuations[0].At
}
