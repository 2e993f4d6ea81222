package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/history"
)

// HistoryReader is what the history and report endpoints need (history.Reader).
type HistoryReader interface {
	Site(ctx context.Context) (history.Site, error)
	History(ctx context.Context, q history.Query) (*history.Series, error)
	DoorFlows(ctx context.Context, q history.Query) (*history.DoorSeries, error)
	Report(ctx context.Context, from, to time.Time) (*history.Report, error)
	Daily(ctx context.Context, date time.Time) (*history.Report, error)
	Compare(ctx context.Context, aFrom, aTo, bFrom, bTo time.Time) (*history.Comparison, error)
}

// historyRoutes registers the history and report endpoints (manager role).
func (a *api) historyRoutes() {
	a.route("GET /api/v1/history", RoleManager, a.history)
	a.route("GET /api/v1/history.csv", RoleManager, a.historyCSV)
	a.route("GET /api/v1/history/doors", RoleManager, a.historyDoors)
	a.route("GET /api/v1/reports/daily", RoleManager, a.reportDaily)
	a.route("GET /api/v1/reports/period", RoleManager, a.reportPeriod)
	a.route("GET /api/v1/reports/compare", RoleManager, a.reportCompare)
}

// autoSteps are the steps chosen when a query gives none: the finest with at most 2000 points.
var autoSteps = []string{"5s", "1m", "5m", "15m", "1h", "1d"}

// historySite answers 503 when this service keeps no history, and gives the site's time zone
// and name otherwise.
func (a *api) historySite(w http.ResponseWriter, r *http.Request) (history.Site, bool) {
	if a.History == nil {
		writeError(w, http.StatusServiceUnavailable, "history is not recorded by this service")
		return history.Site{}, false
	}
	site, err := a.History.Site(r.Context())
	if err != nil {
		a.historyError(w, err)
		return history.Site{}, false
	}
	return site, true
}

// historyQuery reads zone (or door), from, to and step.
func (a *api) historyQuery(w http.ResponseWriter, r *http.Request, key string) (history.Query, bool) {
	site, ok := a.historySite(w, r)
	if !ok {
		return history.Query{}, false
	}
	v := r.URL.Query()
	from, to, err := history.Range(v.Get("from"), v.Get("to"), site.Loc, time.Now(), 24*time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return history.Query{}, false
	}
	q := history.Query{From: from, To: to}
	for _, z := range v[key] {
		for id := range strings.SplitSeq(z, ",") {
			if id != "" {
				q.Zones = append(q.Zones, id)
			}
		}
	}
	if s := v.Get("step"); s != "" {
		if q.Step, err = history.ParseStep(s); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return history.Query{}, false
		}
	} else {
		for _, s := range autoSteps {
			q.Step, _ = history.ParseStep(s)
			if q.Step.Days > 0 || to.Sub(from)/q.Step.D <= 2000 {
				break
			}
		}
	}
	// Arithmetic only: a range far beyond the point limit is refused before the reader
	// lists its buckets (it checks again with the real number of zones).
	if err := history.CheckQuery(q, len(q.Zones)); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return history.Query{}, false
	}
	return q, true
}

func (a *api) historyError(w http.ResponseWriter, err error) {
	var qe *history.QueryError
	switch {
	case errors.As(err, &qe):
		writeError(w, http.StatusBadRequest, qe.Error())
	case errors.Is(err, history.ErrNoHistory), errors.Is(err, history.ErrLocked):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		a.Log.Error("history query failed", "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (a *api) history(w http.ResponseWriter, r *http.Request) {
	if s, ok := historySeries(a, w, r, "zone", HistoryReader.History); ok {
		writeJSON(w, http.StatusOK, s)
	}
}

func (a *api) historyCSV(w http.ResponseWriter, r *http.Request) {
	s, ok := historySeries(a, w, r, "zone", HistoryReader.History)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="history.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	_ = history.WriteSeriesCSV(w, s)
}

func (a *api) historyDoors(w http.ResponseWriter, r *http.Request) {
	if s, ok := historySeries(a, w, r, "door", HistoryReader.DoorFlows); ok {
		writeJSON(w, http.StatusOK, s)
	}
}

// historySeries is the frame of the series endpoints: the query of the key's ids (zone or
// door), the series read answers it with, and its errors mapped to a status; false when the
// answer is written. read is a method expression, as a.History may be nil (a 503).
func historySeries[S any](a *api, w http.ResponseWriter, r *http.Request, key string,
	read func(HistoryReader, context.Context, history.Query) (S, error)) (S, bool) {
	var s S
	q, ok := a.historyQuery(w, r, key)
	if !ok {
		return s, false
	}
	s, err := read(a.History, r.Context(), q)
	if err != nil {
		a.historyError(w, err)
		return s, false
	}
	return s, true
}

// writeReport answers in JSON, or CSV or Markdown with format=csv|md.
func (a *api) writeReport(w http.ResponseWriter, r *http.Request, rep *history.Report, cmp *history.Comparison) {
	format := r.URL.Query().Get("format")
	w.Header().Set("Cache-Control", "no-store")
	switch format {
	case "", "json":
		if cmp != nil {
			writeJSON(w, http.StatusOK, cmp)
		} else {
			writeJSON(w, http.StatusOK, rep)
		}
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if cmp != nil {
			_ = history.WriteComparisonCSV(w, cmp)
		} else {
			_ = history.WriteReportCSV(w, rep)
		}
	case "md":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		if cmp != nil {
			_ = history.WriteComparisonMarkdown(w, cmp)
		} else {
			_ = history.WriteReportMarkdown(w, rep)
		}
	default:
		writeError(w, http.StatusBadRequest, "format must be json, csv or md")
	}
}

// serveReport is the frame of every report endpoint: the site (dates are read in its time
// zone), the report that build makes, its errors mapped to a status (a history.QueryError,
// which build also returns for bad parameters, is a 400), and the answer in the asked format.
func (a *api) serveReport(w http.ResponseWriter, r *http.Request,
	build func(ctx context.Context, site history.Site, v url.Values) (*history.Report, *history.Comparison, error)) {
	site, ok := a.historySite(w, r)
	if !ok {
		return
	}
	rep, cmp, err := build(r.Context(), site, r.URL.Query())
	if err != nil {
		a.historyError(w, err)
		return
	}
	a.writeReport(w, r, rep, cmp)
}

// badParam is a 400 with the message said.
func badParam(msg string) error { return &history.QueryError{Msg: msg} }

func (a *api) reportDaily(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("date") == "" {
		a.reportPeriod(w, r)
		return
	}
	a.serveReport(w, r, func(ctx context.Context, site history.Site, v url.Values) (*history.Report, *history.Comparison, error) {
		d, err := time.ParseInLocation(time.DateOnly, v.Get("date"), site.Loc)
		if err != nil {
			return nil, nil, badParam("date must be YYYY-MM-DD (a day in the site's time zone)")
		}
		rep, err := a.History.Daily(ctx, d)
		return rep, nil, err
	})
}

func (a *api) reportPeriod(w http.ResponseWriter, r *http.Request) {
	a.serveReport(w, r, func(ctx context.Context, site history.Site, v url.Values) (*history.Report, *history.Comparison, error) {
		if v.Get("from") == "" || v.Get("to") == "" {
			return nil, nil, badParam("give date=YYYY-MM-DD, or from and to")
		}
		from, to, err := history.Range(v.Get("from"), v.Get("to"), site.Loc, time.Now(), 0)
		if err != nil {
			return nil, nil, badParam(err.Error())
		}
		rep, err := a.History.Report(ctx, from, to)
		return rep, nil, err
	})
}

func (a *api) reportCompare(w http.ResponseWriter, r *http.Request) {
	a.serveReport(w, r, func(ctx context.Context, site history.Site, v url.Values) (*history.Report, *history.Comparison, error) {
		var t [4]time.Time
		for i, pair := range [2][2]string{{"a_from", "a_to"}, {"b_from", "b_to"}} {
			if v.Get(pair[0]) == "" || v.Get(pair[1]) == "" {
				return nil, nil, badParam("give a_from, a_to, b_from and b_to")
			}
			var err error
			if t[2*i], t[2*i+1], err = history.Range(v.Get(pair[0]), v.Get(pair[1]), site.Loc, time.Now(), 0); err != nil {
				return nil, nil, badParam(pair[0][:1] + ": " + err.Error())
			}
		}
		cmp, err := a.History.Compare(ctx, t[0], t[1], t[2], t[3])
		return nil, cmp, err
	})
}
