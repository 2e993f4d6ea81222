// A guidance screen: renders the guidance the server computes for this screen, and on its own
// turns to the neutral "please follow staff instructions" when the data is stale or the
// server cannot be reached, so a screen never shows green on old figures.
import { loadMessages, t, svg, connectFeed, followPeers } from "/static/common.js";

const screen = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
const token = params.get("token");
let guidance = null;
let received = 0;
let staleAfter = 10000;
let conn = "connecting";
let shown = "";
let movingTo = ""; // the address the page is about to go to (docs/ha.md)
let languages = (params.get("lang") || "zh,en").split(",").filter(Boolean);

const GLYPH = { right: "→", left: "←", up: "↑", down: "↓", "up-right": "↗", "up-left": "↖", "down-right": "↘", "down-left": "↙" };
const ANGLE = { right: 0, "down-right": 45, down: 90, "down-left": 135, left: 180, "up-left": 225, up: 270, "up-right": 315 };

function arrow(dir) {
  return svg("svg", { viewBox: "0 0 100 100", class: "arrow" },
    svg("g", { transform: `rotate(${ANGLE[dir] ?? 0} 50 50)` },
      svg("path", { d: "M10 40 H55 V20 L92 50 L55 80 V60 H10 Z", fill: "currentColor" })));
}

function pictogram(state, dir) {
  switch (state) {
    case "welcome":
      return svg("svg", { viewBox: "0 0 100 100" }, svg("path", { d: "M18 52 L40 74 L84 28", fill: "none", stroke: "currentColor", "stroke-width": 12, "stroke-linecap": "round", "stroke-linejoin": "round" }));
    case "busy":
    case "evacuate":
      if (dir) return arrow(dir);
      return svg("svg", { viewBox: "0 0 100 100" }, svg("path", { d: "M50 8 L95 90 H5 Z", fill: "none", stroke: "currentColor", "stroke-width": 8, "stroke-linejoin": "round" }),
        svg("rect", { x: 45, y: 35, width: 10, height: 32, fill: "currentColor" }), svg("rect", { x: 45, y: 73, width: 10, height: 10, fill: "currentColor" }));
    case "full":
      return null; // the red X across the whole sign says it; no arrow that invites people in
    case "enter": // a metered door's release: straight in
      return arrow("up");
    case "wait": // a raised hand: stop here
      return svg("svg", { viewBox: "0 0 100 100" }, svg("path", { fill: "currentColor",
        d: "M30 92 Q18 80 18 62 V40 Q18 34 24 34 Q30 34 30 40 V56 H34 V18 Q34 12 40 12 Q46 12 46 18 V50 H50 V12 Q50 6 56 6 Q62 6 62 12 V50 H66 V18 Q66 12 72 12 Q78 12 78 18 V64 Q78 84 66 92 Z" }));
    case "drill":
      if (dir) return arrow(dir);
      return svg("svg", { viewBox: "0 0 100 100" }, svg("text", { x: 50, y: 62, "text-anchor": "middle", "font-size": 30, "font-weight": 900, fill: "currentColor" }, "DRILL"));
    default:
      return svg("svg", { viewBox: "0 0 100 100" }, svg("circle", { cx: 50, cy: 28, r: 14, fill: "currentColor" }),
        svg("path", { d: "M28 92 V60 Q28 46 42 46 H58 Q72 46 72 60 V92 Z", fill: "currentColor" }));
  }
}

// live: the page has guidance from a connected feed within stale_after. Anything else (no
// guidance yet on a page just opened or just moved to another address, the feed closed, a
// silent feed, on the way to another address) shows the neutral message.
function live() {
  return !!guidance && conn === "live" && !movingTo && Date.now() - received <= staleAfter;
}

function render() {
  const fresh = live();
  // What the page shows and why, for the browser tests and for staff with devtools.
  Object.assign(document.body.dataset, { conn, fresh: String(fresh), received: String(received), staleAfter: String(staleAfter) });
  const state = fresh ? guidance.state : "neutral";
  const key = fresh ? JSON.stringify([guidance.state, guidance.arrow, guidance.text, guidance.orientation]) : "neutral:" + languages.join();
  // A drill carries the word DRILL in every language on a band of its own, besides its colour.
  const band = document.getElementById("drill-band") || document.body.appendChild(Object.assign(document.createElement("div"), { id: "drill-band" }));
  band.hidden = state !== "drill";
  band.textContent = languages.map((l) => t("sign.drill.banner", {}, l)).join(" · ");
  if (key === shown) return;
  shown = key;
  document.body.dataset.state = state;
  document.body.classList.toggle("portrait", !!guidance && guidance.orientation === "portrait");
  const texts = document.getElementById("texts");
  texts.replaceChildren();
  for (const lang of languages) {
    const tx = fresh ? guidance.text[lang] || { title: "", detail: "" } : { title: t("sign.neutral.title", {}, lang), detail: t("sign.neutral.detail", {}, lang) };
    const block = document.createElement("div");
    block.className = "lang";
    block.lang = lang === "zh" ? "zh-CN" : lang;
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = tx.title;
    block.append(title);
    if (tx.detail) {
      const d = document.createElement("div");
      d.className = "detail";
      // Full points to the alternative in words, with an arrow glyph; no big arrow.
      d.textContent = tx.detail + (fresh && state === "full" && GLYPH[guidance.arrow] ? " " + GLYPH[guidance.arrow] : "");
      block.append(d);
    }
    texts.append(block);
  }
  const p = pictogram(state, fresh ? guidance.arrow : "");
  document.getElementById("pict").replaceChildren(...(p ? [p] : []));
  const cross = document.getElementById("cross");
  cross.replaceChildren(...(state === "full" ? [svg("svg", { viewBox: "0 0 100 100", preserveAspectRatio: "none" },
    svg("path", { d: "M6 6 L94 94 M94 6 L6 94", stroke: "currentColor", "stroke-width": 5, "stroke-linecap": "round" }))] : []));
  renderFoot();
}

// The footer names the screen and the address it is on (and where it is going).
function renderFoot() {
  document.getElementById("foot").textContent = screen + " · " + location.host + (movingTo ? " → " + new URL(movingTo).host : "");
}

async function main() {
  await loadMessages();
  render();
  const q = `?screen=${encodeURIComponent(screen)}` + (token ? `&token=${encodeURIComponent(token)}` : "");
  connectFeed(q, {
    onMessage(m) {
      if (m.type !== "guidance" || !m.guidance) return;
      guidance = m.guidance;
      received = Date.now();
      staleAfter = guidance.stale_after_ms || staleAfter;
      if (guidance.languages && guidance.languages.length) languages = guidance.languages;
      render();
    },
    onState(s) { conn = s; render(); },
  });
  followPeers({ healthy: live, onMoving(to) { movingTo = to; render(); renderFoot(); } });
  setInterval(render, 500);
}

main();
