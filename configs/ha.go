package configs

import (
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
}

func init() {
	for k, v := range map[string]any{
		"ha.enabled":    false,
		"ha.instance":   "",
		"ha.username":   "",
		"ha.password":   "",
		"ha.failover":   "15s",
		"ha.prefix":     "/crowdwatch",
		"ha.state_path": "",
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
		return
	}
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
