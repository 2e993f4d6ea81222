package ingest

import (
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/crowdwatch/crowdwatch/configs"
)

// FuzzWillRefusal gives the broker's will check arbitrary accounts, will topics and payloads:
// a will it lets through is never larger than the limit, never on a filter with wildcards or
// on one of the service's own topics (zone, guidance, alert, service status), and, on a broker
// with accounts, only on the device's own topics, as a publish would be.
func FuzzWillRefusal(f *testing.F) {
	for _, s := range []struct{ user, topic, payload string }{
		{"dc-01", "crowdwatch/s1/status/dc-01", "offline"},
		{"dc-01", "crowdwatch/s1/zone/entrance", `{"occupancy":0}`},
		{"dc-01", "crowdwatch/s1/guidance/main-door", `{"state":"welcome"}`},
		{"dc-01", "crowdwatch/s1/service/status", "offline"},
		{"dc-01", "crowdwatch/s1/alert/x", "{}"},
		{"dc-01", "crowdwatch/s1/status/dc-02", "offline"},
		{"dc-01", "crowdwatch/s1/status/+", "offline"},
		{"dc-01", "crowdwatch/s1/#", "offline"},
		{"sign", "crowdwatch/s1/status/sign", "offline"},
		{"dc-01", "crowdwatch/s1/status/dc-01", strings.Repeat("x", 60<<10)},
		{"", "crowdwatch/s1/zone/entrance", "0"},
	} {
		f.Add(s.user, s.topic, []byte(s.payload))
	}
	topics := NewTopics("crowdwatch", "s1")
	hooks := map[string]*deviceHook{
		"accounts": {broker: &Broker{topics: topics}, site: "s1", maxWill: 256, users: map[string]configs.User{
			"dc-01": {Username: "dc-01", Role: "device"}, "dc-02": {Username: "dc-02", Role: "device"},
			"sign": {Username: "sign", Role: "reader"}}},
		"open": {broker: &Broker{topics: topics}, site: "s1", maxWill: 256, users: map[string]configs.User{}},
	}
	f.Fuzz(func(t *testing.T, user, topic string, payload []byte) {
		for name, h := range hooks {
			pk := packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), WillFlag: true,
				WillTopic: topic, WillPayload: payload}}
			if h.willRefusal(&mqtt.Client{}, pk) != "" {
				continue
			}
			if len(payload) > h.maxWill {
				t.Fatalf("%s: a will of %d bytes passed (limit %d)", name, len(payload), h.maxWill)
			}
			if strings.ContainsAny(topic, "+#") || topic == "" {
				t.Fatalf("%s: a will on the filter %q passed", name, topic)
			}
			if h.serviceTopic(topic) {
				t.Fatalf("%s: a will on the service's own topic %q passed", name, topic)
			}
			if name == "accounts" {
				u, ok := h.users[user]
				_, device, own := topics.Parse(topic)
				if !ok || u.Role != "device" || !own || device != user {
					t.Fatalf("account %q passed a will on %q, which it may not publish on", user, topic)
				}
			}
		}
	})
}
