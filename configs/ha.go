package configs

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// HA configures a store that runs as two or more instances (package ha, docs/ha.md): the
// etcd that elects the leader and orders the operator actions. Off by default: a single
// instance runs exactly as without it.
type HA struct {
	Enabled bool `mapstructure:"enabled"`
	// Instance names this instance, unique among the store's instances (the leader key's
	// value, the author of its actions); empty means the host name.
	Instance string `mapstructure:"instance"`
	// Endpoints are etcd's client URLs (http://host:2379), one per member.
	Endpoints []string `mapstructure:"endpoints"`
	Username  string   `mapstructure:"username"`
	Password  string   `mapstructure:"password"`
	// Failover is the longest a standby takes to lead after the leader died; the lease TTL
	// is two thirds of it (docs/ha.md, "Timing").
	Failover time.Duration `mapstructure:"failover"`
	// Prefix is the root of the store's keys in etcd (<prefix>/<site.id>/...).
	Prefix string `mapstructure:"prefix"`
	// StatePath is this instance's own file for the last applied action; empty means
	// beside storage.path, NAME.ha.db.
	StatePath string `mapstructure:"state_path"`
	// Peers are the public addresses (http(s)://host[:port]) of every instance of the store,
	// this one included, in the order pages try them: a dashboard or guidance screen whose
	// instance stops answering moves to another of these by itself, and to nothing else
	// (docs/ha.md, "Dashboards and screens with several addresses").
	Peers []string `mapstructure:"peers"`
	// CookieDomain, when set, is the Domain of the sign-in cookie, so that one sign-in is
	// sent to every peer's host name under it (a.store.lan and b.store.lan under store.lan);
	// empty: the cookie is the host's only, and a page that moves to another host name asks
	// to sign in again there.
	CookieDomain string `mapstructure:"cookie_domain"`
}

func init() {
	for k, v := range map[string]any{
		"ha.enabled":       false,
		"ha.instance":      "",
		"ha.username":      "",
		"ha.password":      "",
		"ha.failover":      "15s",
		"ha.prefix":        "/crowdwatch",
		"ha.state_path":    "",
		"ha.cookie_domain": "",
	} {
		defaults[k] = v
	}
}

// HAStatePath is ha.state_path, or NAME.ha.db beside storage.path (NAME.db).
func (c *Config) HAStatePath() string {
	if c.HA.StatePath != "" {
		return c.HA.StatePath
	}
	base := strings.TrimSuffix(filepath.Base(c.Storage.Path), filepath.Ext(c.Storage.Path))
	return filepath.Join(filepath.Dir(c.Storage.Path), base+".ha.db")
}

var instanceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// validateHA checks the ha section; with ha.enabled off only that it is not half set.
func (c *Config) validateHA(bad func(key, format string, args ...any)) {
	h := c.HA
	if !h.Enabled {
		if len(h.Peers) > 0 || h.CookieDomain != "" {
			bad("ha.peers", "is set but ha.enabled is off: the addresses of a pair need the pair (set ha.enabled: true, or remove ha.peers and ha.cookie_domain)")
		}
		return
	}
	c.validatePeers(bad)
	if len(h.Endpoints) == 0 {
		bad("ha.endpoints", "is required with ha.enabled (etcd's client URLs, e.g. http://10.0.0.5:2379)")
	}
	for _, e := range h.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
			bad("ha.endpoints", "%q must be an http:// or https:// URL with a port, e.g. http://10.0.0.5:2379", e)
		}
	}
	if h.Instance != "" && !instanceName.MatchString(h.Instance) {
		bad("ha.instance", "%q must be letters, digits, '.', '_' or '-' (at most 63)", h.Instance)
	}
	if h.Failover < 3*time.Second || h.Failover > 5*time.Minute {
		bad("ha.failover", "%v must be between 3s and 5m (write a unit, e.g. 15s)", h.Failover)
	}
	if !strings.HasPrefix(h.Prefix, "/") || strings.HasSuffix(h.Prefix, "/") {
		bad("ha.prefix", "%q must start with / and not end with one, e.g. /crowdwatch", h.Prefix)
	}
	if p := c.HAStatePath(); p == c.Storage.Path || p == c.HistoryPath() {
		bad("ha.state_path", "%q is another of the store's files; the HA state needs its own", p)
	}
}

// PeerOrigin is an ha.peers entry as a browser names its origin: scheme://host[:port] in
// lower case, without the scheme's default port. It refuses anything but an http(s) address
// with a host and nothing after it (no user, path, query or fragment).
func PeerOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("%q must not carry a user or password", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("%q must be the address only (scheme://host:port), without a path, query or fragment", s)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return u.Scheme + "://" + host + ":" + port, nil
	}
	return u.Scheme + "://" + host, nil
}

// PeerOrigins are ha.peers as origins (PeerOrigin), the invalid ones left out (validation
// refuses a file with any).
func (h HA) PeerOrigins() []string {
	var out []string
	for _, p := range h.Peers {
		if o, err := PeerOrigin(p); err == nil {
			out = append(out, o)
		}
	}
	return out
}

var cookieDomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// validatePeers checks ha.peers and ha.cookie_domain.
func (c *Config) validatePeers(bad func(key, format string, args ...any)) {
	h := c.HA
	if len(h.Peers) == 1 {
		bad("ha.peers", "names one address; list every instance of the store, this one included (at least two), or none")
	}
	seen := map[string]bool{}
	var hosts []string
	for _, p := range h.Peers {
		o, err := PeerOrigin(p)
		if err != nil {
			bad("ha.peers", "%v (e.g. https://a.store.lan:8080)", err)
			continue
		}
		if seen[o] {
			bad("ha.peers", "%q is listed twice (as %s)", p, o)
		}
		seen[o] = true
		u, _ := url.Parse(o)
		hosts = append(hosts, u.Hostname())
	}
	d := h.CookieDomain
	if d == "" {
		return
	}
	switch {
	case len(h.Peers) == 0:
		bad("ha.cookie_domain", "needs ha.peers: it is the domain the peers' host names share")
	case !cookieDomain.MatchString(d):
		bad("ha.cookie_domain", "%q must be a lower-case DNS name with at least one dot, e.g. store.lan (no leading dot, no IP address)", d)
	default:
		for _, host := range hosts {
			if net.ParseIP(host) != nil {
				bad("ha.cookie_domain", "peer %s is an IP address: a cookie domain covers host names only; name the peers by host name, or leave ha.cookie_domain empty", host)
			} else if host != d && !strings.HasSuffix(host, "."+d) {
				bad("ha.cookie_domain", "%q does not cover peer %s (its host name must be %s or end in .%s)", d, host, d, d)
			}
		}
	}
}
