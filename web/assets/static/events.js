// The promotion plan on the manager page (docs/events.md): the plan in force or ahead, the
// capacity assessment of every zone beside its capacity, the forecast of arrivals per half
// hour with the range of the comparable days (uPlot), the staffing roster, and after the
// start the review: forecast against actual, metering, drills, the previous event of the kind.
// Every time is the store's (the plans' time zone, from the server).
import uPlot from "/static/vendor/uPlot.esm.js";
import { loadMessages, t, currentLang, translate, api, el } from "/static/common.js";

const $ = (id) => document.getElementById(id);
let tz = "UTC";
let plans = [];
let zones = new Map(); // id -> zone with names
let state = null; // { plan, assess, dayplan, review }
let chart = null;

function fmt(ts, opts) {
  if (ts == null) return "–";
  try {
    return new Intl.DateTimeFormat(currentLang() === "zh" ? "zh-CN" : "en-GB", { timeZone: tz, hourCycle: "h23", ...opts }).format(new Date(ts));
  } catch { return new Date(ts).toISOString(); }
}
const clock = (ts) => fmt(ts, { hour: "2-digit", minute: "2-digit" });
const dayClock = (ts) => fmt(ts, { dateStyle: "medium", timeStyle: "short" });
function num(n) { return n == null ? "–" : Number(n).toLocaleString(currentLang() === "zh" ? "zh-CN" : "en-GB", { maximumFractionDigits: 1 }); }
function dur(s) {
  if (s == null) return "–";
  s = Math.round(s);
  if (s < 60) return t("dur.s", { s });
  if (s < 3600) return t("dur.ms", { m: Math.floor(s / 60), s: s % 60 });
  return t("dur.hm", { h: Math.floor(s / 3600), m: String(Math.floor((s % 3600) / 60)).padStart(2, "0") });
}
function nameIn(o) { return (o && ((o.names && o.names[currentLang()]) || o.name || o.id)) || ""; }
function zoneName(id) { return zones.has(id) ? nameIn(zones.get(id)) : id; }
const range = (r) => (r ? `${num(r.expected)} (${num(r.low)}–${num(r.high)})` : "–");

async function get(path) {
  const r = await api("GET", path);
  return r.ok ? r.body : null;
}

let loads = 0; // the latest load wins: an older answer arriving later is dropped

async function load(id) {
  const plan = plans.find((p) => p.id === id);
  if (!plan) return;
  const seq = ++loads;
  document.body.dataset.eventsLoading = "true";
  const q = encodeURIComponent(id);
  const started = Date.now() >= Date.parse(plan.start);
  const [assess, dayplan, review] = await Promise.all([get("/api/v1/assessment?event=" + q), get(`/api/v1/events/${q}/plan`),
    started ? get(`/api/v1/events/${q}/review`) : Promise.resolve(null)]);
  if (seq !== loads) return;
  document.body.dataset.eventsLoading = "false";
  state = { plan, assess, dayplan, review, started };
  render();
}

function render() {
  if (!state) return;
  const { plan, assess, dayplan, review, started } = state;
  const now = Date.now();
  const status = plan.running ? "running" : now < Date.parse(plan.start) ? "ahead" : "past";
  const bits = [t("ev.when", { start: dayClock(plan.start), end: dayClock(plan.end), doors: clock(plan.doors_open || plan.start) })];
  if (plan.kind) bits.push(t("ev.kind", { kind: plan.kind }));
  if (plan.forecast_scale && plan.forecast_scale !== 1) bits.push(t("ev.scale", { scale: plan.forecast_scale }));
  if (plan.metered && plan.metered.length) bits.push(t("ev.metered", { doors: plan.metered.map((m) => m.door).join(", ") }));
  bits.push(plan.origin === "file" ? t("ev.origin.file") : t("ev.origin.api", { by: plan.updated_by || "–" }));
  $("event-summary").replaceChildren(el("strong", {}, nameIn(plan)), " ", el("span", { class: "badge " + status }, t("ev." + status)), " · ", bits.join(" · "));
  $("event-summary").dataset.status = status;

  if (assess) {
    const window = Math.max(0, assess.target_s - assess.pre_movement_s);
    $("assess-how").textContent = t("ev.assess.how", { density: assess.density_per_m2, flow: assess.flow_per_metre, window: dur(window) }) +
      (assess.warnings === 0 ? " " + t("ev.assess.ok") : "");
    $("assess").tBodies[0].replaceChildren(...assess.zones.map((z) => el("tr", { "data-zone": z.zone, class: z.warnings.length ? "warned" : "" },
      el("td", {}, zoneName(z.zone)), el("td", {}, num(z.capacity)), el("td", {}, num(z.event_capacity)),
      el("td", {}, z.area_m2 ? num(z.area_m2) : "–"), el("td", {}, num(z.density_limit)), el("td", {}, num(z.usable_m)),
      el("td", {}, num(z.egress_limit)), el("td", { class: "warn" }, z.notes.map(noteText).join("; ")))));
  }

  if (dayplan) {
    const f = dayplan.forecast, r = dayplan.roster;
    $("forecast-basis").textContent = t("ev.forecast.basis." + f.basis, { days: f.days.join(", "), scale: f.scale });
    $("forecast-peaks").textContent = f.basis === "none" ? "" :
      t("ev.peaks", { list: f.zones.map((z) => `${zoneName(z.zone)} ${range(z.peak)} / ${num(z.capacity)}`).join(", ") });
    drawForecast(f, r);
    const head = el("tr", {}, el("th", {}, t("ev.col.slot")), el("th", {}, t("ev.col.arrivals")),
      ...r.zones.map((z) => el("th", {}, zoneName(z.zone))), el("th", {}, t("ev.col.total")));
    $("roster").tHead.replaceChildren(head);
    $("roster").tBodies[0].replaceChildren(...f.slots.map((s, i) => el("tr", { "data-slot": i },
      el("td", {}, clock(s)), el("td", {}, range(f.arrivals[i])),
      ...r.zones.map((z) => el("td", { class: z.from_capacity[i] ? "from-capacity" : "", "data-zone": z.zone }, String(z.staff[i]))),
      el("td", {}, el("strong", {}, String(r.total[i]))))));
    $("roster-rules").textContent = t("ev.roster.rules", { entrance: r.rules.EntrancePosts, exit: r.rules.ExitPosts, queue: r.rules.QueuePosts, per: r.rules.PeoplePerStaff });
  }

  $("review-before").hidden = started;
  $("review").hidden = !review;
  const q = encodeURIComponent(plan.id);
  $("review-md").href = `/api/v1/events/${q}/review?format=md`;
  $("review-csv").href = `/api/v1/events/${q}/review?format=csv`;
  if (review) {
    $("review").tBodies[0].replaceChildren(...review.zones.map((z) => el("tr", { "data-zone": z.zone, "data-peak": z.peak == null ? "" : z.peak },
      el("td", {}, zoneName(z.zone)), el("td", {}, num(z.capacity)), el("td", {}, range(z.forecast_peak)), el("td", {}, num(z.peak)),
      el("td", { class: z.within_range === false ? "miss" : "" }, z.error_pct == null ? "–" : (z.error_pct > 0 ? "+" : "") + Math.round(z.error_pct) + "%"),
      el("td", {}, dur((z.seconds_at_or_above || {}).critical)))));
    $("review-metering").textContent = review.metering.length ? t("ev.metering", { list: review.metering.map((d) =>
      t("ev.metering.door", { door: d.door, held: dur(d.held_s), queue: d.queue_max, wait: dur(d.wait_max_s) })).join("; ") }) : t("ev.metering.none");
    $("review-drills").textContent = review.drills.length ? t("ev.drills", { list: review.drills.map((d) =>
      t("ev.drill", { time: clock(d.StartedAt), zones: d.Zones.map(zoneName).join(", "), slowest: dur(d.slowest_s), estimate: dur(d.estimate_s) })).join("; ") }) : t("ev.drills.none");
    const p = review.previous;
    $("review-previous").textContent = p ? t("ev.previous", { name: nameIn(p.event), list: p.zones.map((z) => `${zoneName(z.zone)} ${num(z.peak)}`).join(", ") }) : t("ev.previous.none");
  } else {
    for (const id of ["review-metering", "review-drills", "review-previous"]) $(id).textContent = "";
  }
  document.body.dataset.eventsReady = "true";
}

function noteText(n) {
  return t("ev.warn." + n.code, { door: n.door || "", capacity: num(n.capacity), limit: num(n.limit), what: t(n.event ? "ev.what.event" : "ev.what.capacity") });
}

function drawForecast(f, r) {
  const x = f.slots.map((s) => Date.parse(s) / 1000);
  const data = [x, f.arrivals.map((a) => (a ? a.expected : null)), f.arrivals.map((a) => (a ? a.low : null)),
    f.arrivals.map((a) => (a ? a.high : null)), r.total];
  const box = $("forecast-chart");
  const opts = {
    width: Math.max(300, box.clientWidth || 600), height: 300,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max || 0) * 1.15] }, staff: { range: (u, min, max) => [0, Math.max(1, max || 0) * 1.3] } },
    axes: [{ values: (u, splits) => splits.map((v) => clock(v * 1000)), space: 70 }, {}, { scale: "staff", side: 1, grid: { show: false } }],
    series: [{ label: t("ev.col.slot"), value: (u, v) => (v == null ? "" : clock(v * 1000)) },
      { label: t("ev.series.expected"), stroke: "#0b5cad", width: 2, fill: "rgba(11,92,173,0.08)", points: { show: true, size: 6, fill: "#0b5cad" } },
      { label: t("ev.series.low"), stroke: "#8a939c", dash: [6, 4], width: 1 },
      { label: t("ev.series.high"), stroke: "#d4652f", dash: [6, 4], width: 1.5 },
      { label: t("ev.series.staff"), scale: "staff", stroke: "#1c1f23", width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } }],
  };
  if (chart) chart.destroy();
  chart = new uPlot(opts, data, box);
  box.dataset.slots = String(x.length);
}

async function main() {
  // /manager?view=plan shows the promotion plan alone (the header's link).
  if (new URLSearchParams(location.search).get("view") === "plan") document.body.classList.add("view-plan");
  await loadMessages();
  const list = await get("/api/v1/events");
  if (!list) { $("plan-main").hidden = true; return; } // not allowed, or no plans kept
  tz = list.timezone || "UTC";
  plans = list.plans;
  const zr = await get("/api/v1/zones");
  if (zr) for (const z of zr.zones) zones.set(z.id, z);
  const sel = $("event");
  for (const p of plans) sel.append(el("option", { value: p.id }, nameIn(p)));
  $("event-none").hidden = plans.length > 0;
  if (plans.length === 0) { for (const id of ["assess-panel", "forecast-panel", "roster-panel", "review-panel"]) $(id).hidden = true; document.body.dataset.eventsReady = "true"; return; }
  // The plan asked for, else the running one, else the next, else the latest.
  const now = Date.now();
  const asked = new URLSearchParams(location.search).get("event");
  const pick = plans.find((p) => p.id === asked) || plans.find((p) => p.running) || plans.find((p) => Date.parse(p.start) > now) || plans[plans.length - 1];
  sel.value = pick.id;
  sel.addEventListener("change", () => load(sel.value));
  $("print-plan").addEventListener("click", () => { document.body.classList.add("print-plan"); window.print(); });
  addEventListener("afterprint", () => document.body.classList.remove("print-plan"));
  addEventListener("beforeprint", () => { if (chart) chart.setSize({ width: 680, height: 260 }); });
  addEventListener("afterprint", () => { if (chart) chart.setSize({ width: Math.max(300, $("forecast-chart").clientWidth), height: 300 }); });
  // The language button belongs to manager.js; this module follows it.
  $("lang").addEventListener("click", () => setTimeout(() => { translate($("plan-main")); for (const o of sel.options) o.textContent = nameIn(plans.find((p) => p.id === o.value)); render(); }, 0));
  let resize = 0;
  new ResizeObserver(() => { clearTimeout(resize); resize = setTimeout(() => { if (chart) chart.setSize({ width: Math.max(300, $("forecast-chart").clientWidth), height: 300 }); }, 100); }).observe($("forecast-panel"));
  await load(pick.id);
}

main();
