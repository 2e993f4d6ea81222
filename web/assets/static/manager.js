// The manager page: one zone's occupancy over a day with its capacity and level bands, an
// optional second day overlaid, and the daily report. Charts are uPlot (npm, `make assets`).
import uPlot from "/static/vendor/uPlot.esm.js";
import { loadMessages, t, setLang, currentLang, translate, api, el } from "/static/common.js";

const $ = (id) => document.getElementById(id);
let plot = null;

function isoDay(d) { return d.toISOString().slice(0, 10); }
function nextDay(day) { const d = new Date(day + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + 1); return isoDay(d); }
function prevDay(day) { const d = new Date(day + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() - 1); return isoDay(d); }
function hours(s) { return s == null ? "–" : (s / 3600).toFixed(s < 36000 ? 1 : 0) + " h"; }
function minutes(s) { return s == null ? "–" : Math.round(s / 60) + " min"; }
function clock(ts) { return ts ? new Date(ts).toISOString().slice(11, 16) : "–"; }

function query(zone, day, step) {
  return new URLSearchParams({ zone, from: day, to: nextDay(day), step }).toString();
}

// signIn keeps the zone and days asked for across the sign-in page.
function signIn() { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }

function say(msg) { const b = $("banner"); b.hidden = !msg; b.textContent = msg || ""; }

async function series(zone, day, step) {
  const r = await api("GET", "/api/v1/history?" + query(zone, day, step));
  if (r.status === 401) { signIn(); return null; }
  if (!r.ok) { say(t("mgr.error", { msg: (r.body && r.body.error) || r.status })); return null; }
  return r.body.zones[0];
}

// seconds since the day's first point, so two days line up for the overlay.
function points(z) {
  const start = z.points.length ? Date.parse(z.points[0].start) : 0;
  return {
    x: z.points.map((p) => (Date.parse(p.start) - start) / 1000),
    peak: z.points.map((p) => (p.max == null ? null : p.max)),
    start,
  };
}

async function draw() {
  const zone = $("zone").value, day = $("date").value, step = $("step").value, other = $("compare").value;
  $("csv").href = "/api/v1/history.csv?" + query(zone, day, step);
  const z = await series(zone, day, step);
  if (!z) return;
  const a = points(z);
  const data = [a.x, a.peak];
  const names = [day];
  if (other) {
    const zo = await series(zone, other, step);
    if (zo) {
      const b = points(zo);
      const byX = new Map(b.x.map((x, i) => [x, b.peak[i]]));
      data.push(a.x.map((x) => (byX.has(x) ? byX.get(x) : null)));
      names.push(other);
    }
  }
  data.push(a.x.map(() => z.capacity));
  const bands = (z.bands || []).filter((b) => b.level === "warning" || b.level === "critical");
  for (const b of bands) data.push(a.x.map(() => b.occupancy));
  const any = a.peak.some((v) => v != null);
  $("chart-empty").hidden = any;
  $("chart-title").textContent = `${z.name || z.zone} · ${day}` + (names[1] ? ` / ${names[1]}` : "");
  const colours = ["#0b5cad", "#888888"];
  const opts = {
    width: Math.min(1200, document.body.clientWidth - 40), height: 320,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max, z.capacity) * 1.1] } },
    axes: [{ values: (u, vals) => vals.map((s) => clock(a.start + s * 1000)) }, {}],
    cursor: { drag: { x: true, y: false } },
    series: [{ value: (u, s) => (s == null ? "" : clock(a.start + s * 1000)) },
      ...names.map((n, i) => ({ label: t("mgr.peakof", { day: n }), stroke: colours[i], width: 2, spanGaps: false,
        points: { show: true, size: 5, fill: colours[i] } })),
      { label: t("mgr.capacity"), stroke: "#000", dash: [6, 4], width: 1 },
      ...bands.map((b) => ({ label: t("level." + b.level), stroke: b.level === "critical" ? "#cc0000" : "#f39800", dash: [2, 3], width: 1 }))],
  };
  if (plot) plot.destroy();
  plot = new uPlot(opts, data, $("chart"));
  $("chart").dataset.points = String(a.peak.filter((v) => v != null).length);
}

async function report() {
  const day = $("date").value;
  const r = await api("GET", "/api/v1/reports/daily?date=" + day);
  if (!r.ok) { say(t("mgr.error", { msg: (r.body && r.body.error) || r.status })); return; }
  const rep = r.body;
  $("summary").textContent = t("mgr.summary", { visitors: rep.visitors, departures: rep.departures,
    hour: rep.busiest_hour ? clock(rep.busiest_hour.start) : "–" });
  const body = $("report").tBodies[0];
  body.replaceChildren(...rep.zones.map((z) => el("tr", { "data-zone": z.zone, "data-peak": z.peak == null ? "" : z.peak },
    el("td", {}, z.name || z.zone), el("td", {}, z.peak == null ? "–" : String(z.peak)), el("td", {}, clock(z.peak_at)),
    el("td", {}, z.peak_ratio == null ? "–" : Math.round(z.peak_ratio * 100) + "%"),
    el("td", {}, hours((z.seconds_at_or_above || {}).warning)), el("td", {}, hours((z.seconds_at_or_above || {}).critical)),
    el("td", {}, String(z.entries)), el("td", {}, String(z.exits)), el("td", {}, minutes(z.avg_visit_s)),
    el("td", {}, `${z.clamped} / ${z.corrected}`))));
  const al = rep.alerts;
  $("alerts-summary").textContent = al ? t("mgr.alerts", { n: (al.alerts || []).length }) : (rep.alerts_note || "");
}

async function main() {
  await loadMessages();
  translate(document);
  const s = await api("GET", "/api/v1/session");
  if (s.body && s.body.auth_enabled && !s.body.signed_in) { signIn(); return; }
  if (s.body && s.body.signed_in) $("user").textContent = `${s.body.user} (${s.body.role})`;
  const zr = await api("GET", "/api/v1/zones");
  if (zr.status === 401 || zr.status === 403) { say(t("mgr.denied")); return; }
  for (const z of zr.body.zones) $("zone").append(el("option", { value: z.id }, z.name || z.id));
  const p = new URLSearchParams(location.search);
  if (p.get("zone")) $("zone").value = p.get("zone");
  $("date").value = p.get("date") || isoDay(new Date());
  $("compare").value = p.get("compare") || "";
  $("lang").addEventListener("click", () => { setLang(currentLang() === "zh" ? "en" : "zh"); draw(); report(); });
  $("print").addEventListener("click", () => window.print());
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); draw(); report(); });
  $("compare").placeholder = prevDay($("date").value);
  await Promise.all([draw(), report()]);
  document.body.dataset.ready = "true";
}

main();
