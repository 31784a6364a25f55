// Activity: the live event stream as a virtualised list. The page keeps the newest KEEP events
// in memory and puts only the rows in view into the DOM (a pool of <li> reused as you
// scroll), so a thousand events a second for an hour cost the same memory as for a minute.
// Older events are in the Journal view, read from the daemon page by page.

import { $, el } from "./core.js";
import { subscribe } from "./stream.js";

const ROW = 28; // px; must match `li.event` height in app.css
const KEEP = 5000; // events kept for the list
const OVERSCAN = 8; // rows rendered above and below the viewport
const LAG_SAMPLES = 4096;

let all = []; // kept events, oldest first
let shown = []; // those matching the filter, oldest first
let pending = []; // received since the last frame
let frame = 0; // requestAnimationFrame handle, 0 when none is scheduled
let selected = null; // seq of the event whose detail is open
const pool = [];

/** Event-to-DOM lag samples (ms from journaling to the row being in the page). */
const lag = { samples: new Float64Array(LAG_SAMPLES), n: 0, total: 0 };
export const renderCounters = { rendered: 0 };

export function init() {
  subscribe((e) => {
    pending.push(e);
    if (!frame) frame = requestAnimationFrame(flush);
  });
  $("#filter").addEventListener("input", refilter);
  $("#filter-text").addEventListener("input", refilter);
  $("#events-viewport").addEventListener("scroll", () => render(), { passive: true });
  $("#events-viewport").addEventListener("keydown", onKey);
  $("#events").addEventListener("click", (ev) => {
    const li = ev.target.closest("li.event");
    if (li) openDetail(Number(li.dataset.seq));
  });
  window.addEventListener("resize", () => render());
}

export function reset() {
  all = [];
  shown = [];
  pending = [];
  selected = null;
  $("#event-detail").hidden = true;
  render();
}

export function show() {
  render();
}

function matches(e) {
  const kind = $("#filter").value.trim();
  const text = $("#filter-text").value.trim().toLowerCase();
  if (kind && !e.kind.startsWith(kind)) return false;
  if (!text) return true;
  return [e.actor, e.action, e.tx, e.org].some((v) => v && v.toLowerCase().includes(text));
}

function refilter() {
  shown = all.filter(matches);
  $("#events-viewport").scrollTop = 0;
  render();
}

function flush() {
  frame = 0;
  const batch = pending;
  pending = [];
  for (const e of batch) all.push(e);
  const added = batch.filter(matches);
  for (const e of added) shown.push(e);
  if (all.length > KEEP + 500) all.splice(0, all.length - KEEP);
  if (shown.length > KEEP + 500) shown.splice(0, shown.length - KEEP);
  // Someone reading further down keeps their place; at the top, the list follows live.
  const vp = $("#events-viewport");
  if (vp.scrollTop >= ROW && added.length) vp.scrollTop += added.length * ROW;
  render();
}

/** Puts the rows in view into the DOM, reusing the pool; records lag for first-time rows. */
function render() {
  const vp = $("#events-viewport");
  const ul = $("#events");
  ul.style.height = `${shown.length * ROW}px`;
  $("#events-count").textContent = `${shown.length} of ${all.length} kept`;
  if (vp.offsetParent === null) return; // the view is hidden: rendered when shown
  const first = Math.max(0, Math.floor(vp.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW) + OVERSCAN);
  while (pool.length < last - first) pool.push(el("li.event", { tabindex: "-1" }));
  const now = Date.now();
  let used = 0;
  for (let i = first; i < last; i += 1) {
    const e = shown[shown.length - 1 - i];
    const li = pool[used];
    used += 1;
    li.style.top = `${i * ROW}px`;
    if (li.dataset.seq !== String(e.seq)) {
      li.dataset.seq = String(e.seq);
      li.dataset.kind = e.kind;
      li.textContent = `${e.seq}  ${new Date(e.ts_ms).toLocaleTimeString()}  ${e.kind}  ${e.actor}${e.action ? `  ${e.action}` : ""}`;
    }
    li.classList.toggle("selected", e.seq === selected);
    if (li.parentNode !== ul) ul.append(li);
    if (e.shownMs === undefined) {
      e.shownMs = now;
      renderCounters.rendered += 1;
      if (!e.backfill) {
        lag.samples[lag.n % LAG_SAMPLES] = now - e.ts_ms;
        lag.n += 1;
      }
    }
  }
  for (let i = used; i < pool.length; i += 1) pool[i].remove();
}

function onKey(ev) {
  const rows = [...document.querySelectorAll("li.event")].sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
  const at = rows.indexOf(document.activeElement);
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    const next = rows[Math.max(0, Math.min(rows.length - 1, at + (ev.key === "ArrowDown" ? 1 : -1)))];
    if (next) {
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  } else if (ev.key === "Enter" && at >= 0) {
    openDetail(Number(rows[at].dataset.seq));
  } else if (ev.key === "Escape") {
    $("#event-detail").hidden = true;
  }
}

export function openDetail(seq) {
  const e = all.find((x) => x.seq === seq);
  if (!e) return;
  selected = seq;
  const d = $("#event-detail");
  d.replaceChildren(
    el("h2", {}, `${e.kind} · #${e.seq}`),
    el("p.hint", {}, `${new Date(e.ts_ms).toLocaleString()} · ${e.actor}${e.tx ? ` · transaction ${e.tx}` : ""}`),
    el("pre", {}, JSON.stringify(e.payload, null, 2)),
  );
  d.hidden = false;
  render();
}

/** Lag percentiles over the retained samples, and what the list holds. */
export function stats(withSeqs) {
  const n = Math.min(lag.n, LAG_SAMPLES);
  const s = Array.from(lag.samples.subarray(0, n)).sort((a, b) => a - b);
  const pct = (p) => (n ? s[Math.min(n - 1, Math.floor((p / 100) * n))] : null);
  return {
    rendered: renderCounters.rendered,
    kept: all.length,
    domRows: document.querySelectorAll("li.event").length,
    lagMs: { n, p50: pct(50), p95: pct(95), p99: pct(99), max: n ? s[n - 1] : null },
    seqs: withSeqs ? all.map((e) => e.seq) : undefined,
  };
}

/** Forgets the lag samples (a bench measures a phase at a time). */
export function resetLag() {
  lag.n = 0;
}
