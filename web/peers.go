package web

import (
	"net/http"
	"slices"
	"strings"
)

// A store run as a pair (ha.peers) has several public addresses. Its pages move to another
// instance by navigating there (docs/ha.md, "Dashboards and screens with several
// addresses"): the page keeps talking to its own origin only, so its cookie, its CSRF
// check and the feed's same-origin check are unchanged. The one thing a page asks of
// another origin is whether it is ready: GET /readyz answers a configured peer's page
// (Access-Control-Allow-Origin for that origin alone), and the pages' Content-Security-
// Policy lets them fetch from the configured peers and nowhere else.

// peers are the configured origins of the store's instances; nil without ha.peers.
func (a *api) peers() []string {
	if a.Live == nil {
		return nil
	}
	return a.Live.o.Layout.Peers
}

// connectSrc is the pages' CSP connect-src: their own origin and the configured peers.
func (a *api) connectSrc() string {
	src := []string{"'self'"}
	for _, p := range a.peers() {
		src = append(src, p)
	}
	return strings.Join(src, " ")
}

// allowPeer lets a configured peer's page read this answer (a simple GET: no preflight,
// no credentials). Any other origin gets no allowance, so its page cannot read it.
func (a *api) allowPeer(w http.ResponseWriter, r *http.Request) {
	peers := a.peers()
	if len(peers) == 0 {
		return
	}
	w.Header().Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(peers, o) {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
}
