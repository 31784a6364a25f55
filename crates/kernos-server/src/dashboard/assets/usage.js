// Usage: pictures of what the organisation used, per day — run units against the quota, model
// tokens and cost per model, the plan cache's hit ratio and request latency. Drawn as SVG by a
// few lines of code here (no chart library to ship or audit); colours come from the stylesheet
// so they follow the light/dark scheme.

import { $, api, el } from "./core.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 200;
const PAD = { l: 48, r: 8, t: 10, b: 24 };

export function init() {
  $("#usage-days").addEventListener("change", load);
}

export function reset() {
  $("#charts").replaceChildren();
}

export function show() {
  load();
}

async function load() {
  const days = Number($("#usage-days").value) || 30;
  let month;
  let daily;
  try {
    [month, daily] = await Promise.all([api("GET", "/v1/state/usage"), api("GET", `/v1/state/usage/daily?days=${days}`)]);
  } catch (e) {
    $("#charts").replaceChildren(el("p.error", {}, e.message));
    return;
  }
  const d = daily.days;
  const labels = d.map((x) => x.day.slice(5));
  const models = [...new Set(d.flatMap((x) => x.models.map((m) => `${m.provider}/${m.model}`)))];
  const perModel = (f) => models.map((name) => ({
    name,
    values: d.map((x) => {
      const m = x.models.find((y) => `${y.provider}/${y.model}` === name);
      return m ? f(m) : 0;
    }),
  }));
  const hits = d.reduce((a, x) => a + x.cache_hits, 0);
  const looked = hits + d.reduce((a, x) => a + x.cache_misses, 0);
  $("#charts").replaceChildren(
    quota(month),
    figure("Run units per day", bars(labels, [{ name: "units", values: d.map((x) => x.units) }], (v) => v.toFixed(2))),
    figure("Actions per day", bars(labels, [{ name: "actions", values: d.map((x) => x.actions) }], (v) => String(Math.round(v)))),
    figure("Model tokens per day, by model", models.length ? bars(labels, perModel((m) => m.tokens_in + m.tokens_out), (v) => String(Math.round(v))) : none()),
    figure("Model cost per day, by model (USD)", models.length ? bars(labels, perModel((m) => m.cost_usd), (v) => `$${v.toFixed(4)}`) : none()),
    figure(
      `Plan cache hit ratio${looked ? ` (${Math.round((hits / looked) * 100)}% over the period)` : ""}`,
      looked ? lines(labels, [{ name: "hit ratio", values: d.map((x) => (x.cache_hits + x.cache_misses ? (100 * x.cache_hits) / (x.cache_hits + x.cache_misses) : null)) }], (v) => `${Math.round(v)}%`, 100) : none("No request reached the model tier."),
    ),
    figure(
      "Request latency (submitted → finished)",
      lines(labels, [{ name: "p50", values: d.map((x) => x.latency_p50_ms) }, { name: "p95", values: d.map((x) => x.latency_p95_ms) }], (v) => `${Math.round(v)} ms`),
    ),
  );
}

function none(text = "No model use in this period.") {
  return el("p.hint", {}, text);
}

function figure(title, body) {
  return el("figure.chart", {}, el("figcaption", {}, title), body);
}

/** This month's run units against the quota, as one bar. */
function quota(u) {
  const max = u.quota ?? Math.max(u.units, 1);
  const pct = Math.min(100, (u.units / max) * 100);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} 40`, role: "img", "aria-label": `run units this month: ${u.units.toFixed(2)}${u.quota ? ` of ${u.quota}` : ""}` });
  svg.append(svgEl("rect", { x: 0, y: 8, width: W, height: 20, class: "track" }), svgEl("rect", { x: 0, y: 8, width: (W * pct) / 100, height: 20, class: pct > 90 ? "s-bad" : "s0" }));
  const text = u.quota ? `${u.units.toFixed(2)} of ${u.quota} run units used in ${u.month} (${Math.round(pct)}%)` : `${u.units.toFixed(2)} run units used in ${u.month}; no quota set`;
  return figure("This month", el("div", {}, svg, el("p.hint", {}, text)));
}

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Axes, gridlines and labels shared by both chart kinds; returns [svg, y(v), x(i), slot]. */
function frame(labels, max, fmt, aria) {
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": aria });
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const slot = iw / Math.max(labels.length, 1);
  const y = (v) => PAD.t + ih - (ih * v) / max;
  const x = (i) => PAD.l + slot * i;
  for (const f of [0, 0.5, 1]) {
    svg.append(svgEl("line", { x1: PAD.l, x2: W - PAD.r, y1: y(max * f), y2: y(max * f), class: "grid" }));
    svg.append(svgEl("text", { x: PAD.l - 4, y: y(max * f) + 4, "text-anchor": "end", class: "axis" }, fmt(max * f)));
  }
  const every = Math.ceil(labels.length / 8);
  labels.forEach((l, i) => {
    if (i % every === 0) svg.append(svgEl("text", { x: x(i) + slot / 2, y: H - 6, "text-anchor": "middle", class: "axis" }, l));
  });
  return [svg, y, x, slot];
}

function legend(series) {
  if (series.length < 2) return null;
  return el("ul.legend", {}, series.map((s, i) => el(`li.k${i % 6}`, {}, s.name)));
}

/** Stacked bars, one per day, one colour per series. */
function bars(labels, series, fmt) {
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
  const max = Math.max(...totals, 0) || 1;
  const [svg, y, x, slot] = frame(labels, max, fmt, `${series.map((s) => s.name).join(", ")} per day; highest ${fmt(max)}`);
  labels.forEach((l, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (v <= 0) return;
      const r = svgEl("rect", { x: x(i) + slot * 0.15, width: Math.max(slot * 0.7, 1), y: y(base + v), height: y(base) - y(base + v), class: `s${k % 6}` });
      r.append(svgEl("title", {}, `${l} · ${s.name}: ${fmt(v)}`));
      svg.append(r);
      base += v;
    });
  });
  return el("div", {}, svg, legend(series));
}

/** Lines with a dot per day that has a value (days without one leave a gap). */
function lines(labels, series, fmt, fixedMax) {
  const vals = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  if (!vals.length) return none("Nothing measured in this period.");
  const max = fixedMax ?? (Math.max(...vals) || 1);
  const [svg, y, x, slot] = frame(labels, max, fmt, `${series.map((s) => s.name).join(", ")} per day; highest ${fmt(Math.max(...vals))}`);
  series.forEach((s, k) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const px = x(i) + slot / 2;
      d += `${d && s.values[i - 1] !== null && s.values[i - 1] !== undefined ? "L" : "M"}${px.toFixed(1)},${y(v).toFixed(1)}`;
      const dot = svgEl("circle", { cx: px, cy: y(v), r: 3, class: `s${k % 6}` });
      dot.append(svgEl("title", {}, `${labels[i]} · ${s.name}: ${fmt(v)}`));
      svg.append(dot);
    });
    svg.append(svgEl("path", { d, class: `line l${k % 6}` }));
  });
  return el("div", {}, svg, legend(series));
}
