// Shared by the dashboard, the sign-in page and the guidance screens: the message catalogue,
// JSON requests and the live feed with reconnection. Plain modules, no framework.

let catalogue = {};
let lang = "en";

// loadMessages fetches the catalogue and picks the language: the saved choice, else the
// browser's, else English.
export async function loadMessages() {
  const r = await fetch("/static/i18n.json", { cache: "no-cache" });
  catalogue = await r.json();
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
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    onState("connecting");
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
