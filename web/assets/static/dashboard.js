// The security dashboard: a live map of the store from the feed, alerts, devices, evacuation
// and corrections. All text comes from i18n.json through t().
import { loadMessages, t, setLang, currentLang, translate, api, el, svg, connectFeed, followPeers } from "/static/common.js";

const LEVELS = ["normal", "busy", "warning", "critical", "evacuate"];
const state = {
  session: null, zones: new Map(), order: [], floors: [], floor: null, devices: [], alerts: [], evacuations: [],
  alerting: false, staleAfter: 10000, lastMessage: 0, conn: "connecting", seenAlerts: null,
  muted: localStorage.getItem("cw.muted") === "1", audio: null, site: null, tz: undefined,
  dataAt: 0, clockOffset: 0, openCards: new Map(), drills: [], plan: null,
  self: null, movingTo: "", // this instance's /readyz, and the address the page is about to go to (docs/ha.md)
};
const SEVERITY = { emergency: 4, critical: 3, warning: 2, info: 1 };
const $ = (id) => document.getElementById(id);

function canAct() {
  return state.session && state.session.security_actions && ["security", "admin"].includes(state.session.role);
}

// nameIn is a zone's, floor's or the site's name in the viewer's language (the store file
// may give one per language), else its plain name, else its id.
function nameIn(o) {
  if (!o) return "";
  return (o.names && o.names[currentLang()]) || o.name || o.id || "";
}

function zoneName(id) {
  if (!id) return t("evac.site");
  const z = state.zones.get(id);
  return z ? nameIn(z) : id;
}

function siteName() { return state.site ? nameIn(state.site) : ""; }

// Times are the store's (site.timezone), whatever the browser's zone.
function storeTime(ts) {
  if (!ts) return "";
  try {
    return new Intl.DateTimeFormat(currentLang() === "zh" ? "zh-CN" : "en-GB",
      { timeZone: state.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date(ts));
  } catch { return new Date(ts).toLocaleTimeString(); }
}

// ---------- feed ----------

function onMessage(m) {
  state.lastMessage = Date.now();
  if (m.type === "snapshot") {
    state.zones = new Map(m.zones.map((z) => [z.id, z]));
    state.order = m.zones.map((z) => z.id);
    state.floors = m.floors || [];
    if (!state.floors.some((f) => f.id === state.floor)) state.floor = state.floors.length ? state.floors[0].id : null;
    state.devices = m.devices || [];
    state.alerts = m.alerts || [];
    state.evacuations = m.evacuations || [];
    state.drills = m.drills || [];
    state.plan = m.plan || null;
    state.alerting = !!m.alerting;
    state.staleAfter = m.stale_after_ms || 10000;
    state.site = m.site || null;
    state.tz = (m.site && m.site.timezone) || undefined;
    noteData(m);
    noticeAlerts();
    renderAll();
    return;
  }
  noteData(m);
  if (m.type !== "update") { renderAge(); return; }
  for (const z of m.zones || []) state.zones.set(z.id, z);
  if (m.devices) state.devices = m.devices;
  if (m.alerts) { state.alerts = m.alerts; noticeAlerts(); }
  if (m.evacuations) state.evacuations = m.evacuations;
  if (m.drills) { state.drills = m.drills; state.plan = m.plan || null; renderDrills(); renderCountdown(); }
  if (m.zones) { renderMap(); renderZoneTable(); }
  if (m.devices) renderDevices();
  if (m.alerts) renderAlerts();
  if (m.evacuations) renderEvacuations();
  renderAge();
}

// noteData keeps when the newest count was applied (data_at, server clock) and how far the
// browser's clock is from the server's, so "data N s old" is the age of the newest count.
function noteData(m) {
  if (m.at) state.clockOffset = Date.parse(m.at) - Date.now();
  if (m.data_at) state.dataAt = Date.parse(m.data_at);
}

function onState(s) {
  state.conn = s;
  renderAge();
}

// feedLive: the feed is connected and has said something within stale_after (it sends a
// heartbeat at least that often); the page moves to another instance when it is not.
function feedLive() {
  return state.conn === "live" && !!state.lastMessage && Date.now() - state.lastMessage <= state.staleAfter;
}

// renderInstance names the instance the page is on and its role (docs/ha.md); "not
// answering" once its /readyz did not answer.
function renderInstance() {
  const ha = state.self && state.self.ha;
  const role = state.selfLost ? "gone" : ha && ha.role;
  $("instance").textContent = ha && ha.instance ? t("ha.instance", { name: ha.instance, role: t("ha.role." + role) }) : "";
  $("instance").dataset.role = role || "";
}

// ---------- rendering ----------

function renderAll() {
  translate(document);
  $("site").textContent = siteName();
  renderFloors(); renderMap(); renderZoneTable(); renderAlerts(); renderEvacuations(); renderDevices();
  renderForms(); renderUser(); renderSound(); renderAge(); renderDrills(); renderCountdown(); renderInstance();
}

// ---------- promotion day ----------

// renderCountdown counts down to the plan's doors_open on the server's clock (the feed's
// "at" gives the offset), in the store's time zone.
function renderCountdown() {
  const box = $("countdown");
  const p = state.plan;
  box.hidden = !p;
  if (!p) return;
  const left = Date.parse(p.doors_open) - (Date.now() + state.clockOffset);
  if (left > 0) {
    const s = Math.ceil(left / 1000), h = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
    const time = (h ? h + ":" + String(mm).padStart(2, "0") : String(mm)) + ":" + String(ss).padStart(2, "0");
    box.textContent = `${nameIn(p)}: ${t("dash.countdown", { time })} (${storeTime(p.doors_open)})`;
    box.dataset.state = left <= 30 * 60 * 1000 ? "soon" : "later";
  } else {
    box.textContent = `${nameIn(p)}: ${t("dash.countdown.open")} ${storeTime(p.doors_open)}`;
    box.dataset.state = "open";
  }
  box.dataset.left = String(Math.max(0, Math.ceil(left / 1000)));
}

function renderDrills() {
  const banner = $("drill-banner");
  banner.hidden = state.drills.length === 0;
  banner.textContent = state.drills.map((d) => t("dash.drill.banner") + " · " + zoneName(d.zone)).join(" · ");
  const items = state.drills.map((d) => {
    const cleared = Object.keys(d.cleared_seconds || {}).length;
    return el("li", { class: "drill", "data-drill": d.id, "data-zone": d.zone },
      el("span", { class: "badge drill" }, t("dash.drill")), " ", el("b", {}, zoneName(d.zone)),
      el("div", { class: "meta" }, [d.by, storeTime(d.at), `${cleared} / ${(d.affected || []).length}`].filter(Boolean).join(" · ")),
      el("button", { type: "button", class: "drill-end", disabled: !canAct(), onclick: () => endDrill(d) }, t("dash.drill.end")));
  });
  $("drills").replaceChildren(...items);
}

async function startDrill(ev) {
  ev.preventDefault();
  const zone = $("drill-zone").value;
  if (!(await confirmDialog(`${t("dash.drill.start")}: ${zoneName(zone)} (${t("dash.drill.banner")})`))) return;
  const r = await api("POST", "/api/v1/drills", { zone });
  r.ok ? say(t("dash.drill.banner")) : say(failure(r), true);
}

async function endDrill(d) {
  if (!(await confirmDialog(`${t("dash.drill.end")}: ${zoneName(d.zone)}`))) return;
  const r = await api("POST", "/api/v1/drills/end", { zone: d.zone });
  r.ok ? say(t("dash.drill.end")) : say(failure(r), true);
}

// announce shows the guard the text the PA will say, in every language, before sending it.
async function announce(ev) {
  ev.preventDefault();
  const zone = $("announce-zone").value, st = $("announce-state").value;
  const q = st ? `?state=${encodeURIComponent(st)}` : "";
  const p = await api("GET", `/api/v1/announcements/${encodeURIComponent(zone)}${q}`);
  if (!p.ok) { say(failure(p), true); return; }
  const text = p.body.messages.map((m) => `[${m.language}] ${m.text}`).join("\n");
  if (!(await confirmDialog(`${t("dash.announce.preview")}\n${text}`))) return;
  const r = await api("POST", `/api/v1/announcements/${encodeURIComponent(zone)}`, { state: st });
  r.ok ? say(t("dash.announce.send")) : say(failure(r), true);
}

// The figures are stale when the feed is down or silent for stale_after, or when no count
// has reached the service for three times that (devices report at least that often).
function renderAge() {
  const conn = $("conn");
  if (state.movingTo) { // between two addresses: nothing here is live
    conn.dataset.state = "moving";
    $("conn-text").textContent = t("conn.moving", { host: new URL(state.movingTo).host });
    document.body.classList.add("stale");
    return;
  }
  const silent = !state.lastMessage || Date.now() - state.lastMessage > state.staleAfter;
  const age = state.dataAt ? Math.max(0, Math.floor((Date.now() + state.clockOffset - state.dataAt) / 1000)) : null;
  const stale = state.conn !== "live" || silent || age === null || age * 1000 > 3 * state.staleAfter;
  conn.dataset.state = stale && state.conn === "live" ? "stale" : state.conn;
  conn.dataset.age = age === null ? "" : String(age);
  $("conn-text").textContent = stale && state.conn === "live" ? t("conn.stale") : t("conn." + state.conn);
  $("age").textContent = age === null ? t("conn.nodata") : t("conn.age", { s: age });
  document.body.classList.toggle("stale", stale);
}

function renderFloors() {
  const nav = $("floors");
  nav.replaceChildren(...state.floors.map((f) =>
    el("button", { type: "button", role: "tab", "aria-selected": f.id === state.floor ? "true" : "false", "data-floor": f.id,
      onclick: () => { state.floor = f.id; renderFloors(); renderMap(); } }, nameIn(f))));
  nav.hidden = state.floors.length < 2;
}

function centroid(points) {
  let x = 0, y = 0;
  for (const [px, py] of points) { x += px; y += py; }
  return [x / points.length, y / points.length];
}

function renderMap() {
  const box = $("map");
  const f = state.floors.find((x) => x.id === state.floor);
  if (!f) { box.replaceChildren(el("p", { class: "note" }, t("floor.none"))); return; }
  const evac = evacuatedZones();
  const fs = Math.max(f.width, f.height) / 40;
  const s = svg("svg", { viewBox: `0 0 ${f.width} ${f.height}`, role: "img", "aria-label": nameIn(f) },
    svg("defs", {}, svg("pattern", { id: "hatch", width: fs, height: fs, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      svg("rect", { width: fs / 2, height: fs, fill: "#fff", opacity: "0.45" }))));
  if (f.plan) s.append(svg("image", { href: f.plan, x: 0, y: 0, width: f.width, height: f.height, preserveAspectRatio: "none" }));
  for (const fz of f.zones) {
    const z = state.zones.get(fz.zone);
    if (!z) continue;
    const level = z.level || "normal";
    const pts = fz.polygon.map((p) => p.join(",")).join(" ");
    const [cx, cy] = centroid(fz.polygon);
    const pct = Math.round(z.ratio * 100);
    const g = svg("g", { class: `zone level-${level}`, "data-zone": z.id, "data-occupancy": z.occupancy, "data-level": level,
      "data-pending": z.pending || "" });
    g.append(svg("polygon", { points: pts }));
    if (evac.has(z.id)) g.append(svg("polygon", { points: pts, fill: "url(#hatch)", class: "hatch" }));
    const label = svg("text", { x: cx, y: cy, "font-size": fs, "text-anchor": "middle" },
      svg("tspan", { x: cx, dy: -fs * 0.6, "font-weight": "bold" }, nameIn(z)),
      svg("tspan", { x: cx, dy: fs * 1.2, class: "count" }, `${z.occupancy} / ${z.capacity} · ${pct}%`),
      svg("tspan", { x: cx, dy: fs * 1.1, "font-size": fs * 0.8 }, t("level." + level) + (z.uncertain ? " ?" : "") +
        (z.pending ? " · " + t("level.pending_short") : "")));
    g.append(label);
    s.append(g);
  }
  box.replaceChildren(s);
}

// pendingText says that a zone's alert is waiting out its hold-down: the figure is already
// shown at its level, staff are paged once the hold-down is over.
function pendingText(z) {
  return t("level.pending", { level: t("level." + z.pending), time: z.pending_since ? storeTime(z.pending_since) : "" });
}

function renderZoneTable() {
  const rows = state.order.map((id) => state.zones.get(id)).map((z) => {
    const level = z.level || "normal";
    return el("tr", { "data-zone": z.id, "data-occupancy": z.occupancy },
      el("td", {}, (z.parent ? "  " : "") + nameIn(z)),
      el("td", { class: "num" }, `${z.occupancy} / ${z.capacity}`),
      el("td", { class: "num" }, `${Math.round(z.ratio * 100)}%`),
      el("td", {}, el("span", { class: `badge level-${level}` }, t("level." + level) + (z.uncertain ? " ?" : "")),
        z.pending ? el("span", { class: "pending", "data-pending": z.pending }, " " + pendingText(z)) : null));
  });
  $("zones").tBodies[0].replaceChildren(...rows);
}

function evacuatedZones() {
  const s = new Set();
  for (const e of state.evacuations) {
    if (!e.zone) state.order.forEach((id) => s.add(id));
    s.add(e.zone);
    (e.affected || []).forEach((id) => s.add(id));
  }
  return s;
}

// alertText renders an alert's summary and suggested action in the viewer's language from
// the catalogue (summary_key, action_key, params), a zone id in the params as the zone's
// name; without keys, the server's default-language texts.
function alertText(a) {
  const params = {};
  for (const [k, v] of Object.entries(a.params || {})) params[k] = typeof v === "string" && state.zones.has(v) ? zoneName(v) : v;
  if (a.zone && state.zones.has(a.zone)) { params.zone_name = zoneName(a.zone); params.zone = params.zone || zoneName(a.zone); }
  const known = (key) => key && t(key) !== key;
  return {
    summary: known(a.summary_key) ? t(a.summary_key, params) : a.summary || a.id,
    action: known(a.action_key) ? t(a.action_key, params) : a.action || "",
  };
}

// alertGroups puts the open alerts into one card per zone (or device, or the site), the
// most urgent card first: highest severity, then unacknowledged, then the oldest.
function alertGroups() {
  const groups = new Map();
  for (const a of state.alerts) {
    // A drill has a card of its own, never among the zone's real alerts.
    const key = a.kind === "drill" ? "drill:" + (a.zone || "") : a.zone ? "zone:" + a.zone : a.device ? "device:" + a.device : "site";
    if (!groups.has(key)) groups.set(key, { key, zone: a.zone || "", device: a.device || "", alerts: [] });
    groups.get(key).alerts.push(a);
  }
  const rank = (a) => [SEVERITY[a.severity] || 0, a.state === "acknowledged" ? 0 : 1, -Date.parse(a.starts_at || 0)];
  const cmp = (x, y) => { const a = rank(x), b = rank(y); for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return b[i] - a[i]; return 0; };
  const list = [...groups.values()];
  for (const g of list) { g.alerts.sort(cmp); g.top = g.alerts[0]; g.open = g.alerts.filter((a) => a.state !== "acknowledged"); }
  list.sort((x, y) => cmp(x.top, y.top));
  return list;
}

// escalationLine says who is paged now and when it goes further, for the card's most
// escalated alert.
function escalationLine(alerts) {
  let best = null;
  for (const a of alerts) if ((a.escalation || 0) > ((best && best.escalation) || 0) || (!best && (a.escalation_to || a.next_escalation_at))) best = a;
  if (!best) return null;
  const parts = [];
  if (best.escalation > 0 || best.escalated_at) {
    parts.push(t("alerts.escalated", { to: best.escalation_to ? t("esc." + best.escalation_to) : t("esc.level", { n: best.escalation }), time: storeTime(best.escalated_at) }));
  } else if (best.escalation_to) {
    parts.push(t("alerts.paged", { to: t("esc." + best.escalation_to) }));
  }
  if (best.next_escalation_at && best.state !== "acknowledged") parts.push(t("alerts.next_escalation", { time: storeTime(best.next_escalation_at) }));
  return parts.length ? el("div", { class: "escalation" }, parts.join(" · ")) : null;
}

function renderAlerts() {
  $("alerting-note").hidden = state.alerting;
  const groups = alertGroups();
  const cards = groups.map((g) => {
    const where = g.zone ? zoneName(g.zone) : g.device ? t("alerts.device", { id: g.device }) : t("alerts.sitewide", { site: siteName() });
    const top = alertText(g.top);
    const rows = g.alerts.map((a) => {
      const acked = a.state === "acknowledged";
      const tx = alertText(a);
      return el("li", { class: `alert sev-${a.severity}` + (acked ? " acked" : ""), "data-alert": a.id, "data-state": a.state },
        el("div", { class: "summary" }, tx.summary),
        tx.action ? el("div", { class: "action" }, tx.action) : null,
        el("div", { class: "meta" }, [t("alerts.since", { time: storeTime(a.starts_at) }), acked ? t("alerts.acked", { who: a.ack_by || "" }) + (a.ack_at ? " " + storeTime(a.ack_at) : "") : ""].filter(Boolean).join(" · ")),
        acked ? null : el("button", { type: "button", class: "ack", disabled: !canAct(), onclick: () => ackAlert(a) }, t("alerts.ack")));
    });
    const many = g.alerts.length > 1;
    const single = g.alerts[0];
    const singleAcked = single.state === "acknowledged";
    // A few alerts show at once; a long list (a zone with many) opens on demand.
    const open = state.openCards.has(g.key) ? state.openCards.get(g.key) : g.alerts.length <= 3;
    return el("li", { class: `card sev-${g.top.severity} kind-${g.top.kind}`, "data-card": g.key, "data-kind": g.top.kind, "data-zone": g.zone, "data-count": g.alerts.length },
      el("div", { class: "card-head" },
        g.top.kind === "drill" ? el("span", { class: "badge drill" }, t("dash.drill")) : el("span", { class: `badge sev-${g.top.severity}` }, t("sev." + g.top.severity)),
        el("b", { class: "where" }, where),
        many ? el("span", { class: "count" }, t("alerts.count", { n: g.alerts.length })) : null),
      el("div", { class: "summary" }, top.summary),
      top.action ? el("div", { class: "action" }, "→ " + top.action) : null,
      escalationLine(g.alerts),
      // One alert: its time and button on the card itself; several: a list inside.
      many ? null : el("div", { class: `alert-line sev-${single.severity}` + (singleAcked ? " acked" : ""), "data-alert": single.id, "data-state": single.state },
        el("div", { class: "meta" }, [t("alerts.since", { time: storeTime(single.starts_at) }), singleAcked ? t("alerts.acked", { who: single.ack_by || "" }) + (single.ack_at ? " " + storeTime(single.ack_at) : "") : ""].filter(Boolean).join(" · ")),
        singleAcked ? null : el("button", { type: "button", class: "ack", disabled: !canAct(), onclick: () => ackAlert(single) }, t("alerts.ack"))),
      el("div", { class: "card-actions" },
        g.open.length > 1 && g.zone ? el("button", { type: "button", class: "ack-all", disabled: !canAct(), onclick: () => ackZone(g) }, t("alerts.ack_all", { n: g.open.length })) : null,
        many ? el("button", { type: "button", class: "more", "aria-expanded": String(open),
          onclick: () => { state.openCards.set(g.key, !open); renderAlerts(); } }, open ? t("alerts.less") : t("alerts.more")) : null),
      many && open ? el("ul", { class: "card-alerts" }, rows) : null);
  });
  $("alerts-count").textContent = state.alerts.length ? String(state.alerts.length) : "";
  $("alerts").replaceChildren(...(cards.length ? cards : [el("li", { class: "note" }, t("alerts.none"))]));
}

function renderEvacuations() {
  const banner = $("evac-banner");
  banner.hidden = state.evacuations.length === 0;
  banner.textContent = state.evacuations.map((e) => t("evac.active", { zone: zoneName(e.zone) })).join(" · ");
  const items = state.evacuations.map((e) => el("li", { class: "evac", "data-zone": e.zone },
    el("div", { class: "summary" }, t("evac.active", { zone: zoneName(e.zone) })),
    el("div", { class: "meta" }, [e.reason, e.by, storeTime(e.at)].filter(Boolean).join(" · ")),
    el("button", { type: "button", class: "standdown", disabled: !canAct(), onclick: () => standDown(e) }, t("evac.standdown"))));
  $("evacuations").replaceChildren(...(items.length ? items : [el("li", { class: "note" }, t("evac.none"))]));
}

function renderDevices() {
  const order = [...state.devices].sort((a, b) => Number(a.online) - Number(b.online));
  $("devices").replaceChildren(...order.map((d) => el("li", { class: d.online ? "ok" : "down", "data-device": d.id },
    el("span", { class: "dot" }), el("b", {}, d.id), " ",
    d.online ? t("devices.online") : d.last_seen ? `${t("devices.offline")} · ${storeTime(d.last_seen)}` : t("devices.never"))));
}

// The evacuation list keeps the site (every zone, value "") apart from the zones, one of
// which may be the whole building too.
function renderForms() {
  const zoneOpts = () => state.order.map((id) => el("option", { value: id }, zoneName(id)));
  const opts = (withSite) => withSite ? [
    el("optgroup", { label: t("evac.group_site") }, el("option", { value: "" }, t("evac.site_named", { site: siteName() || t("evac.site") }))),
    el("optgroup", { label: t("evac.group_zones") }, ...zoneOpts()),
  ] : zoneOpts();
  const keep = (sel, withSite) => { const v = sel.value; sel.replaceChildren(...opts(withSite)); if (v !== undefined) sel.value = v; if (sel.selectedIndex < 0) sel.selectedIndex = 0; };
  keep($("evac-zone"), true);
  keep($("corr-zone"), false);
  const dz = $("drill-zone"), dv = dz.value;
  dz.replaceChildren(el("option", { value: "" }, t("evac.site_named", { site: siteName() || t("evac.site") })), ...zoneOpts());
  dz.value = dv || "";
  keep($("announce-zone"), false);
  const st = $("announce-state"), sv = st.value;
  st.replaceChildren(el("option", { value: "" }, "—"), ...["busy", "full", "metering", "evacuation", "drill"].map((s) => el("option", { value: s }, t("announce." + s))));
  st.value = sv || "";
  for (const b of document.querySelectorAll("#evac-form button, #corr-form button, #drill-form button, #announce-form button")) b.disabled = !canAct();
  const banner = $("banner");
  if (state.session && !state.session.security_actions) { banner.hidden = false; banner.textContent = t("err.readonly"); }
  else banner.hidden = true;
}

function renderUser() {
  const s = state.session;
  $("user").textContent = s && s.signed_in ? `${s.user} (${s.role})` : s && !s.auth_enabled ? t("nav.open") : "";
  $("signout").hidden = !(s && s.signed_in);
}

// Browsers keep audio locked until the page is clicked; until then the button says so.
function audioReady() { return !!state.audio && state.audio.state === "running"; }

function renderSound() {
  const b = $("sound");
  const locked = !state.muted && !audioReady();
  b.textContent = state.muted ? t("sound.off") : locked ? t("sound.locked") : t("sound.on");
  b.dataset.sound = state.muted ? "muted" : locked ? "locked" : "on";
  b.classList.toggle("locked", locked);
  b.setAttribute("aria-pressed", String(!state.muted));
}

// unlockAudio runs on the first click anywhere (a user gesture, which browsers require).
function unlockAudio() {
  try {
    state.audio = state.audio || new AudioContext();
    state.audio.onstatechange = renderSound;
    state.audio.resume().then(renderSound, renderSound);
  } catch { /* no audio device: the list still shows the alert */ }
  renderSound();
}

// ---------- sound on new critical alerts ----------

function noticeAlerts() {
  const ids = new Set(state.alerts.map((a) => a.id));
  if (state.seenAlerts !== null) {
    const fresh = state.alerts.some((a) => !state.seenAlerts.has(a.id) && ["critical", "emergency"].includes(a.severity) && a.state === "firing");
    if (fresh) beep();
  }
  state.seenAlerts = ids;
}

function beep() {
  if (state.muted || !audioReady()) return;
  try {
    const ctx = state.audio;
    for (let i = 0; i < 3; i++) {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 880; o.connect(g); g.connect(ctx.destination);
      const at = ctx.currentTime + i * 0.35;
      g.gain.setValueAtTime(0.3, at); g.gain.setValueAtTime(0, at + 0.2);
      o.start(at); o.stop(at + 0.25);
    }
  } catch { /* no audio device: the list still shows the alert */ }
}

// ---------- actions ----------

// confirmDialog asks before an action; with withNote it also takes a note (resolved as a
// string, or null when cancelled).
function confirmDialog(text, withNote = false) {
  return new Promise((resolve) => {
    const d = $("confirm");
    const note = $("confirm-note");
    $("confirm-text").textContent = text;
    note.hidden = !withNote;
    note.value = "";
    d.returnValue = "";
    d.addEventListener("close", () => {
      const ok = d.returnValue === "ok";
      resolve(withNote ? (ok ? note.value.trim() : null) : ok);
    }, { once: true });
    d.showModal();
  });
}

function say(text, bad = false) {
  const m = $("message");
  m.textContent = text;
  m.className = bad ? "bad" : "good";
}

function failure(r) {
  if (r.status === 403 && r.body && /disabled/.test(r.body.error || "")) return t("err.readonly");
  if (r.status === 403) return t("err.forbidden") + (r.body && r.body.error ? ` (${r.body.error})` : "");
  if (r.status === 401) { location.href = "/login?next=/dashboard"; return ""; }
  return t("err.failed", { msg: (r.body && r.body.error) || r.status });
}

async function ackAlert(a) {
  const note = await confirmDialog(`${t("alerts.ack")}: ${alertText(a).summary}`, true);
  if (note === null) return;
  const r = await api("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, { note });
  r.ok ? say(t("alerts.acked", { who: state.session.user })) : say(failure(r), true);
}

// ackZone acknowledges every open alert of a zone at once (POST /api/v1/alerts/ack); a
// service without that endpoint gets them one by one.
async function ackZone(g) {
  const note = await confirmDialog(t("alerts.ack_all_confirm", { n: g.open.length, zone: zoneName(g.zone) }), true);
  if (note === null) return;
  let r = await api("POST", "/api/v1/alerts/ack", { zone: g.zone, note });
  if (r.status === 404 || r.status === 405) {
    for (const a of g.open) {
      r = await api("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, { note });
      if (!r.ok && r.status !== 409) break;
    }
  }
  r.ok ? say(t("alerts.acked", { who: state.session.user })) : say(failure(r), true);
}

async function declare(ev) {
  ev.preventDefault();
  const zone = $("evac-zone").value, reason = $("evac-reason").value.trim();
  if (!reason) { say(t("err.reason"), true); return; }
  if (!(await confirmDialog(t("evac.confirm", { zone: zoneName(zone) })))) return;
  const r = await api("POST", "/api/v1/evacuation", { zone, reason });
  r.ok ? (say(t("evac.active", { zone: zoneName(zone) })), $("evac-reason").value = "") : say(failure(r), true);
}

async function standDown(e) {
  if (!(await confirmDialog(t("evac.confirm_standdown", { zone: zoneName(e.zone) })))) return;
  const reason = $("evac-reason").value.trim() || "stand-down";
  const r = await api("POST", "/api/v1/evacuation/stand-down", { zone: e.zone, reason });
  r.ok ? say(t("evac.none")) : say(failure(r), true);
}

async function correct(ev) {
  ev.preventDefault();
  const zone = $("corr-zone").value, n = Number($("corr-occupancy").value), reason = $("corr-reason").value.trim();
  if (!reason) { say(t("err.reason"), true); return; }
  if (!(await confirmDialog(t("corr.confirm", { zone: zoneName(zone), n })))) return;
  const by = state.session && state.session.user ? state.session.user : "dashboard";
  const r = await api("POST", `/api/v1/zones/${encodeURIComponent(zone)}/correction`, { occupancy: n, by, reason });
  if (r.ok) { say(t("corr.done", { zone: zoneName(zone), n })); $("corr-reason").value = ""; $("corr-occupancy").value = ""; }
  else say(failure(r), true);
}

// ---------- start ----------

async function main() {
  await loadMessages();
  const s = await api("GET", "/api/v1/session");
  state.session = s.body;
  if (state.session.auth_enabled && !state.session.signed_in) { location.href = "/login?next=/dashboard"; return; }
  $("lang").addEventListener("click", () => { setLang(currentLang() === "zh" ? "en" : "zh"); renderAll(); });
  $("sound").addEventListener("click", () => {
    // A click while locked only unlocks (the page-wide listener does that); otherwise toggle.
    if (!state.muted && !audioReady()) return;
    state.muted = !state.muted;
    localStorage.setItem("cw.muted", state.muted ? "1" : "0");
    renderSound();
  });
  document.addEventListener("pointerdown", unlockAudio, { capture: true });
  document.addEventListener("keydown", unlockAudio, { capture: true });
  $("signout").addEventListener("click", async () => { await api("DELETE", "/api/v1/session"); location.href = "/login"; });
  $("evac-form").addEventListener("submit", declare);
  $("corr-form").addEventListener("submit", correct);
  $("drill-form").addEventListener("submit", startDrill);
  $("announce-form").addEventListener("submit", announce);
  setInterval(renderCountdown, 1000);
  renderAll();
  connectFeed("", { onMessage, onState });
  followPeers({ healthy: feedLive, onSelf(r) { state.selfLost = !r; state.self = r || state.self; renderInstance(); },
    onMoving(to) { state.movingTo = to; renderAge(); } });
  setInterval(renderAge, 1000);
}

main();
