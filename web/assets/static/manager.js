// The manager page tells a day's story as `crowdwatch report` does: the store's day in the
// store's time, the chart of one zone over the hours that have data with its peak marked,
// capacity and level lines, another day overlaid, and the daily report: zones, doors, alerts
// with time to acknowledge, evacuations and corrections. Charts are uPlot (`make assets`).
import uPlot from "/static/vendor/uPlot.esm.js";
import { loadMessages, t, setLang, currentLang, translate, api, el } from "/static/common.js";

const $ = (id) => document.getElementById(id);
let plot = null;
let tz; // the site's IANA time zone, from the server
let site = null;
const zoneNames = new Map(); // id -> zone (names per language)
let last = null; // what was drawn, to redraw on a language switch or resize

// ---------- the store's time ----------

function fmt(ts, opts) {
  if (ts == null) return "–";
  try {
    return new Intl.DateTimeFormat(currentLang() === "zh" ? "zh-CN" : "en-GB", { timeZone: tz, hourCycle: "h23", ...opts }).format(new Date(ts));
  } catch { return new Date(ts).toISOString(); }
}
const clock = (ts) => fmt(ts, { hour: "2-digit", minute: "2-digit" });
const clockS = (ts) => fmt(ts, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// storeDay is the date in the store's time zone (YYYY-MM-DD).
function storeDay(d = new Date()) {
  try { return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(d); }
  catch { return d.toISOString().slice(0, 10); }
}
function shiftDay(day, n) { const d = new Date(day + "T12:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return d.toISOString().slice(0, 10); }

// dur says a duration in hours, minutes and seconds: 55 s, 6 min 12 s, 2 h 05 min.
function dur(s) {
  if (s == null) return "–";
  s = Math.round(s);
  if (s < 60) return t("dur.s", { s });
  if (s < 3600) return t("dur.ms", { m: Math.floor(s / 60), s: s % 60 });
  return t("dur.hm", { h: Math.floor(s / 3600), m: String(Math.floor((s % 3600) / 60)).padStart(2, "0") });
}

function nameIn(o) { return (o && ((o.names && o.names[currentLang()]) || o.name || o.id)) || ""; }
function zoneName(id) { return id ? (zoneNames.has(id) ? nameIn(zoneNames.get(id)) : id) : t("mgr.wholesite"); }
function num(n) { return n == null ? "–" : Number(n).toLocaleString(currentLang() === "zh" ? "zh-CN" : "en-GB"); }

// ---------- requests ----------

function query(zone, day, step) { return new URLSearchParams({ zone, from: day, to: shiftDay(day, 1), step }).toString(); }
function signIn() { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
function say(msg) { const b = $("banner"); b.hidden = !msg; b.textContent = msg || ""; }

async function get(path) {
  const r = await api("GET", path);
  if (r.status === 401) { signIn(); return null; }
  if (!r.ok) { say(t("mgr.error", { msg: (r.body && r.body.error) || r.status })); return null; }
  return r.body;
}

// ---------- the chart ----------

function seriesOf(z) {
  return { x: z.points.map((p) => Date.parse(p.start) / 1000), peak: z.points.map((p) => (p.max == null ? null : p.max)),
    // The capacity in force per point (a running plan's), the configured one from an older server.
    cap: z.points.map((p) => p.capacity || z.capacity) };
}

async function draw() {
  const zone = $("zone").value, day = $("date").value, step = $("step").value, other = $("compare").value;
  $("csv").href = "/api/v1/history.csv?" + query(zone, day, step);
  const h = await get("/api/v1/history?" + query(zone, day, step));
  if (!h) return;
  const z = h.zones[0];
  const a = seriesOf(z);
  let b = null;
  if (other) {
    const ho = await get("/api/v1/history?" + query(zone, other, step));
    if (ho) {
      // The other day moved onto this one, so the same time of day lines up.
      const shift = (Date.parse(h.from) - Date.parse(ho.from)) / 1000;
      const s = seriesOf(ho.zones[0]);
      const byX = new Map(s.x.map((x, i) => [x + shift, s.peak[i]]));
      b = a.x.map((x) => (byX.has(x) ? byX.get(x) : null));
    }
  }
  last = { z, a, b, day, other };
  render();
}

function render() {
  if (!last) return;
  const { z, a, b, day, other } = last;
  const withData = a.x.filter((_, i) => a.peak[i] != null);
  const any = withData.length > 0;
  $("chart-empty").hidden = any;
  let peakI = -1;
  a.peak.forEach((v, i) => { if (v != null && (peakI < 0 || v > a.peak[peakI])) peakI = i; });
  const bands = (z.bands || []).filter((x) => x.level === "warning" || x.level === "critical");
  $("chart-title").textContent = `${zoneName(z.zone)} · ${day}` + (other ? ` / ${other}` : "") +
    (peakI >= 0 ? " · " + t("mgr.peak_at", { n: a.peak[peakI], time: clock(a.x[peakI] * 1000), pct: a.cap[peakI] ? Math.round(a.peak[peakI] / a.cap[peakI] * 100) : "–" }) : "");
  const data = [a.x, a.peak];
  const series = [{ label: t("mgr.time"), value: (u, v) => (v == null ? "" : clock(v * 1000)) },
    { label: t("mgr.peakof", { day }), stroke: "#0b5cad", width: 2, spanGaps: false, points: { show: a.x.length < 200, size: 4, fill: "#0b5cad" } }];
  if (b) { data.push(b); series.push({ label: t("mgr.peakof", { day: other }), stroke: "#8a939c", width: 2, spanGaps: false }); }
  // Level lines first, the capacity on top, thicker: where critical is at capacity both show.
  for (const x of bands) {
    data.push(a.x.map(() => x.occupancy));
    series.push({ label: t("level." + x.level) + (x.occupancy === z.capacity ? " = " + t("mgr.capacity") : ""),
      stroke: x.level === "critical" ? "#a52019" : "#d4652f", dash: [8, 6], width: 3, points: { show: false } });
  }
  // The capacity line follows the capacity in force: a plan's steps it up or down.
  data.push(a.cap);
  series.push({ label: t("mgr.capacity"), stroke: "#1c1f23", width: 1.5, points: { show: false } });
  const box = $("chart");
  const width = Math.max(300, box.clientWidth || 600);
  const peakPlugin = {
    hooks: {
      draw: (u) => {
        if (peakI < 0) return;
        const x = u.valToPos(a.x[peakI], "x", true), y = u.valToPos(a.peak[peakI], "y", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        const c = u.ctx, r = 6 * devicePixelRatio;
        c.save();
        c.fillStyle = "#a52019"; c.strokeStyle = "#fff"; c.lineWidth = 2 * devicePixelRatio;
        c.beginPath(); c.arc(x, y, r, 0, 2 * Math.PI); c.fill(); c.stroke();
        c.font = `bold ${12 * devicePixelRatio}px system-ui, "Noto Sans CJK SC", sans-serif`;
        const label = t("mgr.peak_label", { n: a.peak[peakI], time: clock(a.x[peakI] * 1000) });
        const w = c.measureText(label).width;
        const lx = Math.min(x + r + 4, u.bbox.left + u.bbox.width - w - 2);
        c.fillStyle = "#a52019"; c.fillText(label, lx, Math.max(y - r - 4, u.bbox.top + 14 * devicePixelRatio));
        c.restore();
      },
    },
  };
  const opts = {
    width, height: 340, plugins: [peakPlugin],
    tzDate: (ts) => (tz ? uPlot.tzDate(new Date(ts * 1e3), tz) : new Date(ts * 1e3)),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, z.capacity, ...a.cap) * 1.15] } },
    // Axis times in the store's zone, 24-hour, with seconds when zoomed into minutes.
    axes: [{ values: (u, splits) => { const span = u.scales.x.max - u.scales.x.min; return splits.map((v) => (span < 900 ? clockS(v * 1000) : clock(v * 1000))); }, space: 70 }, {}],
    cursor: { drag: { x: true, y: false } },
    series,
  };
  if (plot) plot.destroy();
  plot = new uPlot(opts, data, box);
  // Open on the hours that have data (a 6-minute event is not a sliver of 24 h); a
  // double-click shows the whole day.
  if (any) {
    const span = withData[withData.length - 1] - withData[0];
    const pad = Math.max(60, span * 0.05);
    const min = Math.max(a.x[0], Math.floor((withData[0] - pad) / 60) * 60);
    const max = Math.min(a.x[a.x.length - 1] + 60, Math.ceil((withData[withData.length - 1] + pad) / 60) * 60);
    plot.setScale("x", { min, max });
  }
  box.dataset.points = String(withData.length);
  box.dataset.peak = peakI >= 0 ? String(a.peak[peakI]) : "";
}

// ---------- the report ----------

let rep = null;
let corrections = [];

async function report() {
  const day = $("date").value;
  const r = await get("/api/v1/reports/daily?date=" + day);
  if (!r) return;
  rep = r;
  // Corrections and drift per minute from the history of every zone.
  const ids = [...zoneNames.keys()].join(",");
  corrections = [];
  const h = ids ? await get("/api/v1/history?" + new URLSearchParams({ zone: ids, from: day, to: shiftDay(day, 1), step: "1m" })) : null;
  if (h) for (const z of h.zones) for (const p of z.points) {
    if (p.corrected) corrections.push({ at: Date.parse(p.start), zone: z.zone, what: "corrected", n: p.corrected });
    if (p.clamped) corrections.push({ at: Date.parse(p.start), zone: z.zone, what: "clamped", n: p.clamped });
  }
  renderReport();
}

function story(rep) {
  const parts = [t("mgr.story.visitors", { in: num(rep.visitors), out: num(rep.departures) })];
  if (rep.busiest_hour) parts.push(t("mgr.story.busiest", { hour: clock(rep.busiest_hour.start), n: num(rep.busiest_hour.entries) }));
  const worst = [...rep.zones].filter((z) => z.peak_ratio != null).sort((x, y) => y.peak_ratio - x.peak_ratio)[0];
  if (worst) {
    const crit = (worst.seconds_at_or_above || {}).critical || 0;
    parts.push(t(crit > 0 ? "mgr.story.peak_critical" : "mgr.story.peak", { zone: zoneName(worst.zone), n: num(worst.peak),
      pct: Math.round(worst.peak_ratio * 100), time: clock(worst.peak_at), dur: dur(crit) }));
  }
  const al = rep.alerts;
  if (al) parts.push(al.fired ? t("mgr.story.alerts", { n: al.fired, acked: al.acknowledged, median: dur(al.median_ack_s), max: dur(al.max_ack_s) }) : t("mgr.story.noalerts"));
  const declared = (rep.evacuations || []).filter((e) => e.what === "evacuation_declared");
  for (const e of declared) parts.push(t("mgr.story.evac", { zone: zoneName(e.zone), time: clock(e.at), by: e.by || "–" }));
  return parts.join(currentLang() === "zh" ? "" : " ");
}

function renderReport() {
  if (!rep) return;
  $("summary").textContent = story(rep);
  $("recorded").textContent = rep.recorded_to ? t("mgr.recorded", { time: fmt(rep.recorded_to, { dateStyle: "medium", timeStyle: "short" }), tz: rep.timezone || tz || "" }) : "";
  $("report").tBodies[0].replaceChildren(...rep.zones.map((z) => el("tr", { "data-zone": z.zone, "data-peak": z.peak == null ? "" : z.peak },
    el("td", {}, zoneName(z.zone)), el("td", {}, num(z.peak)), el("td", {}, clock(z.peak_at)),
    el("td", {}, z.peak_ratio == null ? "–" : Math.round(z.peak_ratio * 100) + "%"),
    el("td", {}, dur((z.seconds_at_or_above || {}).warning)), el("td", {}, dur((z.seconds_at_or_above || {}).critical)),
    el("td", {}, num(z.entries)), el("td", {}, num(z.exits)), el("td", {}, dur(z.avg_visit_s)),
    el("td", {}, `${z.clamped} / ${z.corrected}`))));
  const doors = rep.doors || [];
  $("doors").tBodies[0].replaceChildren(...doors.map((d) => el("tr", { "data-door": d.door },
    el("td", {}, d.door), el("td", {}, d.from === "outside" ? t("mgr.outside") : zoneName(d.from)),
    el("td", {}, d.to === "outside" ? t("mgr.outside") : zoneName(d.to)), el("td", {}, num(d.in)), el("td", {}, num(d.out)))));
  $("doors-empty").hidden = doors.length > 0;
  const al = rep.alerts;
  const fired = al ? al.fired : 0;
  $("alerts-summary").dataset.fired = al ? String(fired) : "";
  $("alerts-summary").textContent = al ? t("mgr.alerts", { n: fired, acked: al.acknowledged, median: dur(al.median_ack_s), max: dur(al.max_ack_s) }) : (rep.alerts_note || t("mgr.alerts_none"));
  const list = (al && al.list) || [];
  $("alert-list").tBodies[0].replaceChildren(...list.map((l) => el("tr", { "data-alert": l.id, class: "sev-" + (l.severity || "info") },
    el("td", {}, clockS(l.fired_at)), el("td", {}, l.zone ? zoneName(l.zone) : l.kind === "device_silent" ? "–" : t("mgr.wholesite")),
    el("td", {}, el("span", { class: "badge sev-" + (l.severity || "info") }, t("sev." + (l.severity || "info"))), " ", kindText(l)),
    el("td", {}, l.ack_by || "–"), el("td", {}, dur(l.ack_s)), el("td", {}, dur(l.resolve_s)))));
  $("alert-list").hidden = list.length === 0;
  const log = [...(rep.evacuations || []).map((e) => ({ at: Date.parse(e.at), zone: e.zone, what: e.what, by: e.by, note: e.note })), ...corrections]
    .sort((x, y) => x.at - y.at);
  $("log").tBodies[0].replaceChildren(...log.map((e) => el("tr", { class: "log-" + e.what },
    el("td", {}, clockS(e.at)), el("td", {}, zoneName(e.zone)), el("td", {}, t("mgr.log." + e.what, { n: e.n || "" })),
    el("td", {}, [e.by, e.note].filter(Boolean).join(" · ") || "–"))));
  $("log-empty").hidden = log.length > 0;
}

function kindText(l) {
  const key = "kind." + l.kind;
  const s = t(key, { level: l.level ? t("level." + l.level) : "" });
  return s === key ? l.kind + (l.level ? " " + l.level : "") : s;
}

// ---------- start ----------

function relabel() {
  translate(document);
  $("site").textContent = site ? nameIn(site) : "";
  for (const o of $("zone").options) o.textContent = zoneName(o.value);
  $("tz").textContent = tz ? t("mgr.tz", { tz }) : "";
  render(); renderReport();
}

async function main() {
  await loadMessages();
  translate(document);
  const s = await api("GET", "/api/v1/session");
  if (s.body && s.body.auth_enabled && !s.body.signed_in) { signIn(); return; }
  if (s.body && s.body.signed_in) $("user").textContent = `${s.body.user} (${s.body.role})`;
  const zr = await api("GET", "/api/v1/zones");
  if (zr.status === 401 || zr.status === 403) { say(t("mgr.denied")); return; }
  site = zr.body.site || null;
  tz = site && site.timezone;
  for (const z of zr.body.zones) { zoneNames.set(z.id, z); $("zone").append(el("option", { value: z.id }, nameIn(z))); }
  if (!tz) { // an older service: the history answer carries the site's time zone
    const h = await api("GET", "/api/v1/history?zone=" + encodeURIComponent(zr.body.zones[0].id));
    if (h.ok) tz = h.body.timezone;
  }
  $("site").textContent = site ? nameIn(site) : "";
  const p = new URLSearchParams(location.search);
  // Open on the zone that matters: the first with a parent (an entrance) unless asked.
  const first = zr.body.zones.find((z) => z.parent) || zr.body.zones[0];
  $("zone").value = p.get("zone") || (first ? first.id : "");
  $("date").value = p.get("date") || storeDay();
  $("compare").value = p.get("compare") || "";
  if (p.get("step") && [...$("step").options].some((o) => o.value === p.get("step"))) $("step").value = p.get("step");
  $("tz").textContent = tz ? t("mgr.tz", { tz }) : "";
  $("lang").addEventListener("click", () => { setLang(currentLang() === "zh" ? "en" : "zh"); relabel(); });
  $("print").addEventListener("click", () => window.print());
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); draw(); report(); });
  $("compare").placeholder = shiftDay($("date").value, -1);
  let resize = 0;
  new ResizeObserver(() => { clearTimeout(resize); resize = setTimeout(() => { if (plot) plot.setSize({ width: Math.max(300, $("chart").clientWidth), height: 340 }); }, 100); }).observe($("chart-panel"));
  addEventListener("beforeprint", () => { if (plot) plot.setSize({ width: 680, height: 300 }); });
  addEventListener("afterprint", () => { if (plot) plot.setSize({ width: Math.max(300, $("chart").clientWidth), height: 340 }); });
  await Promise.all([draw(), report()]);
  document.body.dataset.ready = "true";
}

main();
