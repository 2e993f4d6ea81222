package configs

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file holds the store file's sections for the web side: floor plans for the security
// dashboard, guidance screens, sign-in (users and API tokens) and HTTPS.

// Floor is one floor of the dashboard's map: a drawing area of Width x Height plan units, an
// optional background image, and a polygon per zone drawn on it.
type Floor struct {
	ID    string `mapstructure:"id"`
	Name  string `mapstructure:"-"`    // Names.Default()
	Names Names  `mapstructure:"name"` // plain or per language
	// Plan is the path of a background image (PNG, JPEG or SVG) stretched over the drawing
	// area. Relative paths are relative to the service's working directory.
	Plan   string      `mapstructure:"plan"`
	Width  float64     `mapstructure:"width"`
	Height float64     `mapstructure:"height"`
	Zones  []FloorZone `mapstructure:"zones"`
}

// FloorZone places a zone on a floor as a polygon of at least three [x, y] points in plan
// units.
type FloorZone struct {
	Zone    string       `mapstructure:"zone"`
	Polygon [][2]float64 `mapstructure:"polygon"`
}

// Signage holds the defaults every guidance screen uses.
type Signage struct {
	// Hold is the least time a screen keeps a state before relaxing to a milder one.
	// Escalation (and evacuation) shows at once.
	Hold time.Duration `mapstructure:"hold"`
	// StaleAfter: a screen that has heard nothing for this long shows the neutral "please
	// follow staff instructions" instead of its last state.
	StaleAfter time.Duration `mapstructure:"stale_after"`
}

// Screen is one guidance screen at /signage/<id>, guarding one zone.
type Screen struct {
	ID string `mapstructure:"id"`
	// Name is optional, for people (the dashboard's list of screens); plain or per language.
	Name  string `mapstructure:"-"`
	Names Names  `mapstructure:"name"`
	Zone  string `mapstructure:"zone"`
	// Door is the door the screen stands at (optional). The screen guards every zone that
	// door's crossing into Zone adds to: Zone and each enclosing zone a person passing it was
	// not in yet. Without it, the doors from outside or from Zone's parent into Zone decide.
	Door string `mapstructure:"door"`
	// Alternatives are where the screen sends people when its zone is busy; it points to the
	// least loaded one.
	Alternatives []Pointer `mapstructure:"alternatives"`
	// Exit is the way out shown during an evacuation.
	Exit Pointer `mapstructure:"exit"`
	// Languages shown at once, first is the largest: "zh", "en".
	Languages   []string `mapstructure:"languages"`
	Orientation string   `mapstructure:"orientation"` // landscape or portrait
}

// Pointer is a place a screen points to, with the arrow's direction and a label per language.
type Pointer struct {
	Zone string `mapstructure:"zone"`
	// Door (alternatives only, optional) is the door the alternative's route enters Zone by;
	// it is judged with every zone that door's crossing adds to, like a screen's door.
	Door  string            `mapstructure:"door"`
	Arrow string            `mapstructure:"arrow"`
	Label map[string]string `mapstructure:"label"`
}

// Auth holds the people and machines that may sign in.
type Auth struct {
	Users  []WebUser  `mapstructure:"users"`
	Tokens []APIToken `mapstructure:"tokens"`
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration `mapstructure:"session_ttl"`
	// Path is the sign-in file (sessions, so that a sign-out holds across a restart, and the
	// audit log); empty means NAME.auth.db beside storage.path.
	Path string `mapstructure:"path"`
	// AuditRetention is how long audit entries are kept.
	AuditRetention time.Duration `mapstructure:"audit_retention"`
}

// HTTPFeed bounds the live feed's WebSocket connections.
type HTTPFeed struct {
	MaxPerUser    int `mapstructure:"max_per_user"`    // per signed-in user or token
	MaxPerAddress int `mapstructure:"max_per_address"` // per remote host
	MaxTotal      int `mapstructure:"max_total"`
}

// AuthPath is the sign-in file: auth.path, or NAME.auth.db beside storage.path (NAME.db).
func (c *Config) AuthPath() string {
	if c.Auth.Path != "" {
		return c.Auth.Path
	}
	base := strings.TrimSuffix(filepath.Base(c.Storage.Path), filepath.Ext(c.Storage.Path))
	return filepath.Join(filepath.Dir(c.Storage.Path), base+".auth.db")
}

// WebUser is a person who signs in to the dashboard. PasswordHash is a bcrypt hash made by
// `crowdwatch hash-password`; the password itself is never in the file.
type WebUser struct {
	Username     string `mapstructure:"username"`
	Name         string `mapstructure:"name"`
	PasswordHash string `mapstructure:"password_hash"`
	Role         string `mapstructure:"role"`
}

// APIToken is a machine's (or a display screen's) credential, stored as the hex SHA-256 of the
// token (`crowdwatch new-token` makes both). A display token names the one screen it may read.
type APIToken struct {
	Name   string `mapstructure:"name"`
	SHA256 string `mapstructure:"sha256"`
	Role   string `mapstructure:"role"`
	Screen string `mapstructure:"screen"`
	// Device is, for a token of role device, the one device whose reports it may push
	// (POST /ingest/v1/{device}); such a token may do nothing else.
	Device string `mapstructure:"device"`
}

// HTTPIngest bounds devices' HTTP pushes.
type HTTPIngest struct {
	// MaxBody is the largest push body, in bytes (a Hikvision push carries a JPEG beside
	// its XML).
	MaxBody int `mapstructure:"max_body"`
}

// MaxIngestBody is the largest http.ingest.max_body.
const MaxIngestBody = 16 << 20

// TokenRoles are the roles of API tokens: the web roles and device.
var TokenRoles = append(slices.Clone(WebRoles), "device")

// HTTPTLS turns on HTTPS for http.listen.
type HTTPTLS struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// Roles a user or token may have, from least to most.
var WebRoles = []string{"display", "manager", "security", "admin"}

// Arrow directions a pointer may use.
var Arrows = []string{"left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right"}

// Languages the screens and dashboard have catalogues for.
var Languages = []string{"zh", "en"}

func init() {
	for k, v := range map[string]any{
		"http.tls.cert_file":        "",
		"http.tls.key_file":         "",
		"signage.hold":              "30s",
		"signage.stale_after":       "10s",
		"auth.session_ttl":          "12h",
		"auth.path":                 "",
		"auth.audit_retention":      "2160h",
		"http.feed.max_per_user":    20,
		"http.feed.max_per_address": 50,
		"http.feed.max_total":       1000,
		"http.ingest.max_body":      256 << 10,
	} {
		defaults[k] = v
	}
}

// validateWeb checks floors, screens, users, tokens and HTTPS; bad reports each problem.
func (c *Config) validateWeb(bad func(key, format string, args ...any)) {
	zoneIDs := map[string]bool{}
	for _, z := range c.Zones {
		zoneIDs[z.ID] = true
	}
	floorIDs := map[string]int{}
	for i, f := range c.Floors {
		key := fmt.Sprintf("floors[%d]", i)
		switch {
		case !idPattern.MatchString(f.ID):
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", f.ID)
		default:
			if j, dup := floorIDs[f.ID]; dup {
				bad(key+".id", "duplicate floor %q (also floors[%d])", f.ID, j)
			}
			floorIDs[f.ID] = i
		}
		if f.Width <= 0 || f.Height <= 0 {
			bad(key, "width and height must be > 0 (plan units the polygons are drawn in)")
		}
		if f.Plan != "" {
			ext := strings.ToLower(f.Plan[strings.LastIndex(f.Plan, ".")+1:])
			if !slices.Contains([]string{"png", "jpg", "jpeg", "svg", "webp"}, ext) {
				bad(key+".plan", "%q must be a .png, .jpg, .svg or .webp image", f.Plan)
			} else if st, err := os.Stat(f.Plan); err != nil || st.IsDir() {
				bad(key+".plan", "%q cannot be read (relative paths start at the working directory)", f.Plan)
			}
		}
		seen := map[string]bool{}
		for j, fz := range f.Zones {
			zkey := fmt.Sprintf("%s.zones[%d]", key, j)
			if !zoneIDs[fz.Zone] {
				bad(zkey+".zone", "unknown zone %q", fz.Zone)
			} else if seen[fz.Zone] {
				bad(zkey+".zone", "zone %q is already drawn on this floor", fz.Zone)
			}
			seen[fz.Zone] = true
			if len(fz.Polygon) < 3 {
				bad(zkey+".polygon", "needs at least 3 points [x, y]")
			}
			for _, p := range fz.Polygon {
				if p[0] < 0 || p[1] < 0 || p[0] > f.Width || p[1] > f.Height {
					bad(zkey+".polygon", "point [%g, %g] is outside the floor (0..%g, 0..%g)", p[0], p[1], f.Width, f.Height)
					break
				}
			}
		}
	}

	if c.Signage.Hold < 0 || c.Signage.Hold > 10*time.Minute {
		bad("signage.hold", "%v must be between 0s and 10m (write a unit, e.g. 30s)", c.Signage.Hold)
	}
	if c.Signage.StaleAfter < 2*time.Second || c.Signage.StaleAfter > 5*time.Minute {
		bad("signage.stale_after", "%v must be between 2s and 5m (write a unit, e.g. 10s)", c.Signage.StaleAfter)
	}
	screenIDs := map[string]int{}
	pointer := func(key string, p Pointer, needZone bool) {
		if p.Zone != "" && !zoneIDs[p.Zone] {
			bad(key+".zone", "unknown zone %q", p.Zone)
		}
		if needZone && p.Zone == "" {
			bad(key+".zone", "is required")
		}
		if p.Door != "" && p.Zone != "" && zoneIDs[p.Zone] {
			c.checkScreenDoor(bad, key+".door", p.Door, p.Zone)
		}
		if p.Arrow != "" && !slices.Contains(Arrows, p.Arrow) {
			bad(key+".arrow", "%q must be one of %s", p.Arrow, strings.Join(Arrows, ", "))
		}
		for lang := range p.Label {
			if !slices.Contains(Languages, lang) {
				bad(key+".label", "language %q must be one of %s", lang, strings.Join(Languages, ", "))
			}
		}
	}
	for i, s := range c.Screens {
		key := fmt.Sprintf("screens[%d]", i)
		if !idPattern.MatchString(s.ID) {
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", s.ID)
		} else if j, dup := screenIDs[s.ID]; dup {
			bad(key+".id", "duplicate screen %q (also screens[%d])", s.ID, j)
		} else {
			screenIDs[s.ID] = i
		}
		if !zoneIDs[s.Zone] {
			bad(key+".zone", "unknown zone %q (the zone this screen guards)", s.Zone)
		} else if s.Door != "" {
			c.checkScreenDoor(bad, key+".door", s.Door, s.Zone)
		}
		for j, a := range s.Alternatives {
			pointer(fmt.Sprintf("%s.alternatives[%d]", key, j), a, true)
			if a.Zone == s.Zone && s.Zone != "" {
				bad(fmt.Sprintf("%s.alternatives[%d].zone", key, j), "%q is the zone the screen guards", a.Zone)
			}
		}
		pointer(key+".exit", s.Exit, false)
		for _, l := range s.Languages {
			if !slices.Contains(Languages, l) {
				bad(key+".languages", "%q must be one of %s", l, strings.Join(Languages, ", "))
			}
		}
		if s.Orientation != "" && s.Orientation != "landscape" && s.Orientation != "portrait" {
			bad(key+".orientation", "%q must be landscape or portrait", s.Orientation)
		}
	}

	users := map[string]bool{}
	for i, u := range c.Auth.Users {
		key := fmt.Sprintf("auth.users[%d]", i)
		if !idPattern.MatchString(u.Username) {
			bad(key+".username", "%q must be letters, digits, '.', '_' or '-' (at most 64)", u.Username)
		} else if users[u.Username] {
			bad(key+".username", "duplicate user %q", u.Username)
		}
		users[u.Username] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") || len(u.PasswordHash) != 60 {
			bad(key+".password_hash", "must be a bcrypt hash (make one with `crowdwatch hash-password`)")
		}
		if !slices.Contains(WebRoles, u.Role) || u.Role == "display" {
			bad(key+".role", "%q must be manager, security or admin (screens use tokens)", u.Role)
		}
	}
	tokenNames := map[string]bool{}
	hashes := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			bad(key+".name", "is required (it is who the token acts as in the log)")
		} else if tokenNames[t.Name] {
			bad(key+".name", "duplicate token %q", t.Name)
		}
		tokenNames[t.Name] = true
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			bad(key+".sha256", "must be 64 hex digits (make one with `crowdwatch new-token`)")
		} else if hashes[strings.ToLower(t.SHA256)] {
			bad(key+".sha256", "the same token is listed twice")
		}
		hashes[strings.ToLower(t.SHA256)] = true
		if !slices.Contains(TokenRoles, t.Role) {
			bad(key+".role", "%q must be one of %s", t.Role, strings.Join(TokenRoles, ", "))
		}
		if t.Role == "device" {
			if !c.declaresDevice(t.Device) {
				bad(key+".device", "device token needs the id of a configured device, not %q", t.Device)
			}
		} else if t.Device != "" {
			bad(key+".device", "only device tokens name a device")
		}
		if t.Role == "display" {
			if _, ok := screenIDs[t.Screen]; !ok {
				bad(key+".screen", "display token needs the id of a configured screen, not %q", t.Screen)
			}
		} else if t.Screen != "" {
			bad(key+".screen", "only display tokens name a screen")
		}
	}
	if c.HTTP.Ingest.MaxBody < 64 || c.HTTP.Ingest.MaxBody > MaxIngestBody {
		bad("http.ingest.max_body", "%d must be between 64 and %d bytes", c.HTTP.Ingest.MaxBody, MaxIngestBody)
	}
	if c.Auth.SessionTTL < time.Minute || c.Auth.SessionTTL > 7*24*time.Hour {
		bad("auth.session_ttl", "%v must be between 1m and 168h", c.Auth.SessionTTL)
	}
	if c.Auth.AuditRetention < 24*time.Hour || c.Auth.AuditRetention > 10*366*24*time.Hour {
		bad("auth.audit_retention", "%v must be between 24h and 87840h (10 years)", c.Auth.AuditRetention)
	}
	if p := c.AuthPath(); p == c.Storage.Path || p == c.HistoryPath() || p == c.AlertsPath() {
		bad("auth.path", "%q is another database of the service; sign-in needs its own file", p)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"http.feed.max_per_user", c.HTTP.Feed.MaxPerUser}, {"http.feed.max_per_address", c.HTTP.Feed.MaxPerAddress}, {"http.feed.max_total", c.HTTP.Feed.MaxTotal}} {
		if f.v < 1 || f.v > 100_000 {
			bad(f.key, "%d must be between 1 and 100000", f.v)
		}
	}
	if (c.HTTP.TLS.CertFile == "") != (c.HTTP.TLS.KeyFile == "") {
		bad("http.tls", "cert_file and key_file go together")
	}
	for _, f := range []struct{ key, path string }{{"http.tls.cert_file", c.HTTP.TLS.CertFile}, {"http.tls.key_file", c.HTTP.TLS.KeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad(f.key, "%q cannot be read", f.path)
			}
		}
	}
}

// checkScreenDoor checks that door exists and that crossing it enters zone (the zone is
// inside one of the door's sides and not inside the other).
func (c *Config) checkScreenDoor(bad func(key, format string, args ...any), key, door, zone string) {
	parent := map[string]string{}
	for _, z := range c.Zones {
		parent[z.ID] = z.Parent
	}
	inside := func(side string) bool {
		for z, n := side, 0; z != "" && n <= len(c.Zones); z, n = parent[z], n+1 {
			if z == zone {
				return true
			}
		}
		return false
	}
	for _, d := range c.Doors {
		if d.ID != door {
			continue
		}
		if inside(d.From) == inside(d.To) {
			bad(key, "door %q (%s -> %s) does not lead into zone %q", door, d.From, d.To, zone)
		}
		return
	}
	bad(key, "unknown door %q", door)
}

// Screen returns a screen by id.
func (c *Config) Screen(id string) (Screen, bool) {
	for _, s := range c.Screens {
		if s.ID == id {
			return s, true
		}
	}
	return Screen{}, false
}

// validateHTTP checks the http section's listen address and live feed interval (the rest of
// the web settings: validateWeb).
func (c *Config) validateHTTP(bad func(key, format string, args ...any)) {
	if c.HTTP.LiveInterval < 10*time.Millisecond || c.HTTP.LiveInterval > 2*time.Second {
		bad("http.live_interval", "%v must be between 10ms and 2s (write a unit, e.g. 50ms)", c.HTTP.LiveInterval)
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
}

// declaresDevice tells whether a device id is bound to a door or a zone.
func (c *Config) declaresDevice(id string) bool {
	if id == "" {
		return false
	}
	for _, d := range c.Doors {
		if d.Counter.Device == id {
			return true
		}
	}
	for _, s := range c.Sensors {
		if s.Device == id {
			return true
		}
	}
	return false
}
