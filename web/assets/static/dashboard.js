// The security dashboard: a live map of the store from the feed, alerts, devices, evacuation
// and corrections. All text comes from i18n.json through t().
import { loadMessages, t, setLang, currentLang, translate, api, el, svg, connectFeed } from "/static/common.js";

const LEVELS = ["normal", "busy", "warning", "critical", "evacuate"];
const state = {
  session: null, zones: new Map(), order: [], floors: [], floor: null, devices: [], alerts: [], evacuations: [],
  alerting: false, staleAfter: 10000, lastMessage: 0, conn: "connecting", seenAlerts: null,
  muted: localStorage.getItem("cw.muted") === "1", audio: null,
};
const $ = (id) => document.getElementById(id);

function canAct() {
  return state.session && state.session.security_actions && ["security", "admin"].includes(state.session.role);
}

function zoneName(id) {
  if (!id) return t("evac.site");
  const z = state.zones.get(id);
  return z && z.name ? z.name : id;
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
    state.alerting = !!m.alerting;
    state.staleAfter = m.stale_after_ms || 10000;
    $("site").textContent = m.site ? m.site.name || m.site.id : "";
    noticeAlerts();
    renderAll();
    return;
  }
  if (m.type !== "update") { renderAge(); return; }
  for (const z of m.zones || []) state.zones.set(z.id, z);
  if (m.devices) state.devices = m.devices;
  if (m.alerts) { state.alerts = m.alerts; noticeAlerts(); }
  if (m.evacuations) state.evacuations = m.evacuations;
  if (m.zones) { renderMap(); renderZoneTable(); }
  if (m.devices) renderDevices();
  if (m.alerts) renderAlerts();
  if (m.evacuations) renderEvacuations();
  renderAge();
}

function onState(s) {
  state.conn = s;
  renderAge();
}

// ---------- rendering ----------

function renderAll() {
  translate(document);
  renderFloors(); renderMap(); renderZoneTable(); renderAlerts(); renderEvacuations(); renderDevices();
  renderForms(); renderUser(); renderSound(); renderAge();
}

function renderAge() {
  const conn = $("conn");
  const age = state.lastMessage ? Math.floor((Date.now() - state.lastMessage) / 1000) : null;
  const stale = state.conn !== "live" || age === null || age * 1000 > state.staleAfter;
  conn.dataset.state = stale && state.conn === "live" ? "stale" : state.conn;
  $("conn-text").textContent = stale && state.conn === "live" ? t("conn.stale") : t("conn." + state.conn);
  $("age").textContent = age === null ? "" : t("conn.age", { s: age });
  document.body.classList.toggle("stale", stale);
}

function renderFloors() {
  const nav = $("floors");
  nav.replaceChildren(...state.floors.map((f) =>
    el("button", { type: "button", role: "tab", "aria-selected": f.id === state.floor ? "true" : "false", "data-floor": f.id,
      onclick: () => { state.floor = f.id; renderFloors(); renderMap(); } }, f.name || f.id)));
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
  const s = svg("svg", { viewBox: `0 0 ${f.width} ${f.height}`, role: "img", "aria-label": f.name || f.id },
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
    const g = svg("g", { class: `zone level-${level}`, "data-zone": z.id, "data-occupancy": z.occupancy, "data-level": level });
    g.append(svg("polygon", { points: pts }));
    if (evac.has(z.id)) g.append(svg("polygon", { points: pts, fill: "url(#hatch)", class: "hatch" }));
    const label = svg("text", { x: cx, y: cy, "font-size": fs, "text-anchor": "middle" },
      svg("tspan", { x: cx, dy: -fs * 0.6, "font-weight": "bold" }, z.name || z.id),
      svg("tspan", { x: cx, dy: fs * 1.2, class: "count" }, `${z.occupancy} / ${z.capacity} · ${pct}%`),
      svg("tspan", { x: cx, dy: fs * 1.1, "font-size": fs * 0.8 }, t("level." + level) + (z.uncertain ? " ?" : "")));
    g.append(label);
    s.append(g);
  }
  box.replaceChildren(s);
}

function renderZoneTable() {
  const rows = state.order.map((id) => state.zones.get(id)).map((z) => {
    const level = z.level || "normal";
    return el("tr", { "data-zone": z.id, "data-occupancy": z.occupancy },
      el("td", {}, (z.parent ? "  " : "") + (z.name || z.id)),
      el("td", { class: "num" }, `${z.occupancy} / ${z.capacity}`),
      el("td", { class: "num" }, `${Math.round(z.ratio * 100)}%`),
      el("td", {}, el("span", { class: `badge level-${level}` }, t("level." + level) + (z.uncertain ? " ?" : ""))));
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

function renderAlerts() {
  $("alerting-note").hidden = state.alerting;
  const items = state.alerts.map((a) => {
    const acked = a.state === "acknowledged";
    return el("li", { class: `alert sev-${a.severity}`, "data-alert": a.id },
      el("div", { class: "summary" }, a.summary || a.id),
      el("div", { class: "meta" }, [a.zone ? zoneName(a.zone) : a.device || "", new Date(a.starts_at).toLocaleTimeString()].filter(Boolean).join(" · ")),
      acked ? el("div", { class: "meta" }, t("alerts.acked", { who: a.ack_by || "" }))
        : el("button", { type: "button", class: "ack", disabled: !canAct(), onclick: () => ackAlert(a) }, t("alerts.ack")));
  });
  $("alerts").replaceChildren(...(items.length ? items : [el("li", { class: "note" }, t("alerts.none"))]));
}

function renderEvacuations() {
  const banner = $("evac-banner");
  banner.hidden = state.evacuations.length === 0;
  banner.textContent = state.evacuations.map((e) => t("evac.active", { zone: zoneName(e.zone) })).join(" · ");
  const items = state.evacuations.map((e) => el("li", { class: "evac", "data-zone": e.zone },
    el("div", { class: "summary" }, t("evac.active", { zone: zoneName(e.zone) })),
    el("div", { class: "meta" }, [e.reason, e.by, new Date(e.at).toLocaleTimeString()].filter(Boolean).join(" · ")),
    el("button", { type: "button", class: "standdown", disabled: !canAct(), onclick: () => standDown(e) }, t("evac.standdown"))));
  $("evacuations").replaceChildren(...(items.length ? items : [el("li", { class: "note" }, t("evac.none"))]));
}

function renderDevices() {
  const order = [...state.devices].sort((a, b) => Number(a.online) - Number(b.online));
  $("devices").replaceChildren(...order.map((d) => el("li", { class: d.online ? "ok" : "down", "data-device": d.id },
    el("span", { class: "dot" }), el("b", {}, d.id), " ",
    d.online ? t("devices.online") : d.last_seen ? `${t("devices.offline")} · ${new Date(d.last_seen).toLocaleTimeString()}` : t("devices.never"))));
}

function renderForms() {
  const opts = (withSite) => [
    ...(withSite ? [el("option", { value: "" }, t("evac.site"))] : []),
    ...state.order.map((id) => el("option", { value: id }, zoneName(id))),
  ];
  const keep = (sel, withSite) => { const v = sel.value; sel.replaceChildren(...opts(withSite)); if (v !== undefined) sel.value = v; if (sel.selectedIndex < 0) sel.selectedIndex = 0; };
  keep($("evac-zone"), true);
  keep($("corr-zone"), false);
  for (const b of document.querySelectorAll("#evac-form button, #corr-form button")) b.disabled = !canAct();
  const banner = $("banner");
  if (state.session && !state.session.security_actions) { banner.hidden = false; banner.textContent = t("err.readonly"); }
  else banner.hidden = true;
}

function renderUser() {
  const s = state.session;
  $("user").textContent = s && s.signed_in ? `${s.user} (${s.role})` : s && !s.auth_enabled ? t("nav.open") : "";
  $("signout").hidden = !(s && s.signed_in);
}

function renderSound() {
  const b = $("sound");
  b.textContent = state.muted ? t("sound.off") : t("sound.on");
  b.setAttribute("aria-pressed", String(!state.muted));
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
  if (state.muted) return;
  try {
    state.audio = state.audio || new AudioContext();
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
  const note = await confirmDialog(`${t("alerts.ack")}: ${a.summary || a.id}`, true);
  if (note === null) return;
  const r = await api("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/ack`, { note });
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
    state.muted = !state.muted;
    localStorage.setItem("cw.muted", state.muted ? "1" : "0");
    if (!state.muted) { try { state.audio = state.audio || new AudioContext(); state.audio.resume(); } catch { /* no audio */ } }
    renderSound();
  });
  $("signout").addEventListener("click", async () => { await api("DELETE", "/api/v1/session"); location.href = "/login"; });
  $("evac-form").addEventListener("submit", declare);
  $("corr-form").addEventListener("submit", correct);
  renderAll();
  connectFeed("", { onMessage, onState });
  setInterval(renderAge, 1000);
}

main();
