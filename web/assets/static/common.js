// Shared by the dashboard, the sign-in page and the guidance screens: the message catalogue,
// JSON requests and the live feed with reconnection. Plain modules, no framework.

let catalogue = {};
let lang = "en";

// loadMessages fetches the catalogue and picks the language: the saved choice, else the
// browser's, else English.
export async function loadMessages() {
  const r = await fetch("/static/i18n.json", { cache: "no-cache" });
  catalogue = await r.json();
  // A page that moved from another instance of the store (followPeers) brings its language
  // in the fragment: this origin's storage has not seen the choice yet.
  const moved = /^#lang=([a-z]+)$/.exec(location.hash);
  if (moved && catalogue[moved[1]]) {
    localStorage.setItem("cw.lang", moved[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const saved = localStorage.getItem("cw.lang");
  lang = saved && catalogue[saved] ? saved : (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  return catalogue;
}

export function currentLang() { return lang; }

export function setLang(l) {
  if (!catalogue[l]) return;
  lang = l;
  localStorage.setItem("cw.lang", l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  translate(document);
}

// t looks a key up in a language (the current one by default) and fills {placeholders}.
export function t(key, vars = {}, l = lang) {
  let s = (catalogue[l] && catalogue[l][key]) || (catalogue.en && catalogue.en[key]) || key;
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", String(v));
  return s;
}

// translate fills every element marked data-i18n (text) or data-i18n-placeholder.
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

// api sends a JSON request; it resolves to {ok, status, body}.
export async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  return { ok: r.ok, status: r.status, body: data };
}

// el builds an element: el("div", {class: "x", "data-id": 1}, child, "text").
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// connectFeed keeps a WebSocket to the live feed open: on every (re)connection the server
// sends a fresh snapshot, so nothing is patched onto old state. After a failure it waits
// 0.5 s, doubling to at most 15 s, with jitter so a room of screens does not reconnect at once.
export function connectFeed(query, { onMessage, onState }) {
  let delay = 500;
  let ws = null;
  let stopped = false;
  let first = true; // after a loss the page keeps saying "reconnecting" until it is live again
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    onState(first ? "connecting" : "reconnecting");
    first = false;
    ws = new WebSocket(`${scheme}//${location.host}/api/v1/live${query}`);
    ws.onopen = () => { delay = 500; onState("live"); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      onMessage(m);
    };
    ws.onclose = () => {
      if (stopped) return;
      onState("reconnecting");
      const wait = delay * (0.75 + Math.random() * 0.5);
      delay = Math.min(delay * 2, 15000);
      setTimeout(open, wait);
    };
  };
  open();
  return { close() { stopped = true; if (ws) ws.close(); } };
}

// originOf is an address as a browser names its origin, or "" for anything else.
function originOf(s) {
  try {
    const u = new URL(s.trim());
    return u.protocol === "http:" || u.protocol === "https:" ? u.origin : "";
  } catch { return ""; }
}

// followPeers moves the page to another instance of the store when its own stops answering
// (docs/ha.md, "Dashboards and screens with several addresses"). The addresses are the
// store file's ha.peers, which this instance's /readyz lists; a URL's ?peers= (comma-separated
// addresses) may choose among them and their order, never add one: the page's Content-
// Security-Policy lets it fetch only from the configured peers, and the page moves only to
// an address whose /readyz it read. It moves by navigating (the same path and query, so a
// screen's display token goes along), so it only ever talks to the origin it is on.
//
// healthy() says whether the page has live data now. While it has, the page checks its own
// /readyz every 15 s; once it has had none for 4 s (the feed closed and did not come back),
// at once. If its own instance does not answer, or answers not ready, the page asks the
// others and goes to a ready one, the leader when several are ready (any ready instance
// holds the exact figures: each counts every report; the leader is the one whose
// notifications go out). onSelf(readyz) gets its own instance's answer (null when it did
// not answer), onMoving(origin) the address it is about to go to.
export function followPeers({ healthy, onSelf = () => {}, onMoving = () => {} }) {
  const here = location.origin;
  const asked = (new URLSearchParams(location.search).get("peers") || "").split(",").map(originOf).filter(Boolean);
  let configured = null; // the peers this instance's /readyz named
  let lastHealthy = Date.now(); // a page just opened has a grace too
  let lastSelf = 0;
  let busy = false;
  let gone = false; // on its way to another address

  const probe = async (origin) => {
    try {
      const r = await fetch(origin + "/readyz", { cache: "no-store", credentials: "omit", mode: origin === here ? "same-origin" : "cors",
        signal: AbortSignal.timeout(2000) });
      const body = await r.json();
      return { origin, ready: r.ok && body.ready === true, role: body.ha && body.ha.role, body };
    } catch { return null; }
  };

  // The addresses to try: the configured ones, in the URL's order when it names some.
  const candidates = () => {
    const base = configured || asked;
    const order = asked.length ? asked.filter((o) => base.includes(o)) : base;
    return order.filter((o) => o !== here);
  };

  const tick = async () => {
    if (busy || gone) return;
    const now = Date.now();
    const ok = healthy();
    if (ok) lastHealthy = now;
    if (ok && configured && now - lastSelf < 15000) return;
    if (!ok && now - lastHealthy < 4000) return;
    if (configured && !candidates().length && now - lastSelf < 5000) return; // nowhere to go: no need to hurry
    busy = true;
    try {
      lastSelf = now;
      const self = await probe(here);
      if (self && Array.isArray(self.body.peers)) configured = self.body.peers.map(originOf).filter(Boolean);
      onSelf(self ? self.body : null); // null: it did not answer
      if (self && self.ready) return; // ready here: stay, the feed reconnects by itself
      if (!self && healthy()) return; // one lost probe while the feed is live is no reason to go
      const others = (await Promise.all(candidates().map(probe))).filter((p) => p && p.ready);
      if (!others.length) return; // nobody ready: try again at the next tick
      const to = others.find((p) => p.role === "leader") || others[0];
      gone = true;
      onMoving(to.origin);
      location.replace(to.origin + location.pathname + location.search + (location.hash || "#lang=" + lang));
    } finally { busy = false; }
  };
  tick();
  return setInterval(tick, 1000);
}
