// Package security is the service's intrusion detection: the components that meet an attacker
// first (the embedded broker, sign-in, the HTTP API and the WebSocket feed) report what they
// refused as Events to a Sink; the monitor counts them by kind and turns them into alerts on
// their own route (docs/security.md).
package security

import "time"

// Kind names what was refused or noticed.
type Kind string

// The kinds a component may report. Each is counted in crowdwatch_security_events_total{kind}.
const (
	SignInFailed      Kind = "signin_failed"       // a wrong user name or password
	SignInThrottled   Kind = "signin_throttled"    // sign-in attempts refused by the throttle
	MQTTAuthFailed    Kind = "mqtt_auth_failed"    // an MQTT CONNECT with a wrong account or password
	ACLRefused        Kind = "acl_refused"         // a publish or subscribe outside the account's topics
	WillRefused       Kind = "will_refused"        // a Last Will outside the account's topics, or too large
	UnknownDevice     Kind = "unknown_device"      // a report from a device the store file does not declare
	ClientIDCollision Kind = "client_id_collision" // a client id that belongs to another account
	ConnectionLimit   Kind = "connection_limit"    // a connection refused by a limit (MQTT or WebSocket)
	TokenRefused      Kind = "token_refused"       // a bearer token that matches nothing, or used outside its role
)

// Event is one refusal, with who and where it came from.
type Event struct {
	Kind Kind
	// Source is the remote address the attempt came from; a port is dropped by the monitor, so
	// that one host's connections count as one source.
	Source string
	// Subject is what was tried: the account, user, client id, device or topic.
	Subject string
	// Detail is a short sentence for the person who reads the alert or the log.
	Detail string
	At     time.Time
}

// Sink takes events. Record must never block the caller: a component that meets an attacker
// must not be slowed down by reporting it.
type Sink interface {
	Record(Event)
}

// Discard is a Sink that drops every event (unit tests, tools).
var Discard Sink = discard{}

type discard struct{}

func (discard) Record(Event) {}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Record calls f.
func (f SinkFunc) Record(e Event) { f(e) }
