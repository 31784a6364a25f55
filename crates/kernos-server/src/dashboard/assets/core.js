// What every view shares: who is signed in, the API call (with the CSRF token on mutations),
// and a small element builder. No framework: the DOM is built with textContent only, so
// nothing from the journal is ever parsed as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

/** The signed-in session: {org, role, key_id, session, expires_ms, csrf}, or null. */
export const session = { me: null };

const RANK = { viewer: 0, operator: 1, admin: 2, owner: 3 };

/** Whether the signed-in role is at least `role` (the API refuses anyway; this hides buttons). */
export const atLeast = (role) => session.me !== null && RANK[session.me.role] >= RANK[role];

/** The host operator (owner of org `local`) sees host-wide things: monitors, metrics. */
export const hostOperator = () => session.me?.org === "local" && session.me?.role === "owner";

/** An API error with the HTTP status and the server's explanation. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

/** Calls the daemon's API as the signed-in browser session. */
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.me?.csrf) headers["X-CSRF-Token"] = session.me.csrf;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!r.ok) throw new ApiError(r.status, data?.detail || data?.title);
  return data;
}

/**
 * Builds an element: `el("li.approval", {data: {approval: id}, onclick}, "text", child)`.
 * Strings become text nodes; null/false children are skipped.
 */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const e = document.createElement(tag || "div");
  if (classes.length) e.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "data") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "hidden") e.hidden = Boolean(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** A button that runs `onClick` and stays disabled until it has finished. */
export function button(text, cls, onClick, title) {
  const b = el(`button.${cls}`, { type: "button", title });
  b.textContent = text;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await onClick();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Shows an error (or success) line at the top of the page for a few seconds. */
export function notify(message, bad = true) {
  const n = $("#notice");
  n.textContent = message;
  n.className = bad ? "error" : "ok";
  n.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => (n.hidden = true), 6000);
}

/** Runs an API mutation, reporting a refusal instead of throwing. */
export async function attempt(what, f) {
  try {
    return await f();
  } catch (e) {
    notify(`${what}: ${e.message}`);
    return undefined;
  }
}

export const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : "—");

/** `2026-12-07 13:09:02` in local time: compact, sortable, one line in a table. */
export function fmtStamp(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago"; or "in …" for the future. */
export function fmtAge(ms, now = Date.now()) {
  if (!ms) return "—";
  const d = Math.round((now - ms) / 1000);
  const a = Math.abs(d);
  const s = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return d >= 0 ? `${s} ago` : `in ${s}`;
}

/** Renders rows of objects as a table with the given columns (`[{name, title?}]`). */
export function table(columns, rows, cls = "") {
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.title || c.name)));
  const body = rows.map((r) =>
    el("tr", {}, columns.map((c) => {
      const v = c.cell ? c.cell(r) : r[c.name];
      return el("td", {}, v instanceof Node ? v : v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
    })),
  );
  return el(`div.scroll${cls ? `.${cls}` : ""}`, {}, el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
}

/** Calls `f` at most once per `ms`, and once more after the last call (for refresh on events). */
export function debounce(f, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) {
      again = true;
      return;
    }
    f();
    timer = setTimeout(function tick() {
      if (again) {
        again = false;
        f();
        timer = setTimeout(tick, ms);
      } else timer = null;
    }, ms);
  };
}
