package main

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/auth"
)

// demoAccess is the sign-in the demo made for this run.
type demoAccess struct {
	user, password string
	screens        map[string]string // screen id -> display token
	order          []string
}

// addDemoAccess adds a "demo" admin with a random password (unless the file has users) and a
// display token for every screen without one.
func addDemoAccess(cfg *configs.Config) (*demoAccess, error) {
	d := &demoAccess{screens: map[string]string{}}
	if len(cfg.Auth.Users) == 0 {
		d.user, d.password = "demo", rand.Text()[:16]
		hash, err := auth.HashPassword(d.password)
		if err != nil {
			return nil, err
		}
		cfg.Auth.Users = append(cfg.Auth.Users, configs.WebUser{Username: d.user, Name: "Demo", PasswordHash: hash, Role: "admin"})
	}
	for _, s := range cfg.Screens {
		tok, sum, err := auth.NewToken()
		if err != nil {
			return nil, err
		}
		cfg.Auth.Tokens = append(cfg.Auth.Tokens, configs.APIToken{Name: "demo-screen-" + s.ID, SHA256: sum, Role: "display", Screen: s.ID})
		d.screens[s.ID] = tok
		d.order = append(d.order, s.ID)
	}
	return d, nil
}

func (d *demoAccess) print(w io.Writer, base string) {
	fmt.Fprintf(w, "\nCrowdwatch demo\n  dashboard: %s/dashboard\n", base)
	if d.user != "" {
		fmt.Fprintf(w, "  sign in as %q with password %q (made for this run only)\n", d.user, d.password)
	}
	for _, id := range d.order {
		fmt.Fprintf(w, "  screen %-12s %s/signage/%s?token=%s\n", id, base, id, d.screens[id])
	}
	fmt.Fprintln(w)
}

func scheme(cfg *configs.Config) string {
	if cfg.HTTP.TLS.CertFile != "" {
		return "https://"
	}
	return "http://"
}
