// The Kernos dashboard: one page over the daemon's own API and event stream. No framework and
// no build step: what the binary embeds is what runs (ES modules, served from this origin
// only). The session cookie is HttpOnly; the CSRF token lives only in memory (GET /v1/session
// gives it again after a reload). Each view is a module with init/show/reset; this file signs
// in and out and routes `#/view[/id]` to them.

import { $, api, atLeast, session } from "./core.js";
import * as activity from "./activity.js";
import * as ask from "./ask.js";
import * as history from "./history.js";
import * as inbox from "./inbox.js";
import * as journal from "./journal.js";
import * as keys from "./keys.js";
import * as ops from "./ops.js";
import * as stream from "./stream.js";
import * as usage from "./usage.js";

/** View name -> its module and the lowest role that sees it. */
const VIEWS = {
  ask: { m: ask, role: "viewer" },
  inbox: { m: inbox, role: "viewer" },
  activity: { m: activity, role: "viewer" },
  history: { m: history, role: "viewer" },
  journal: { m: journal, role: "viewer" },
  ops: { m: ops, role: "viewer" },
  usage: { m: usage, role: "viewer" },
  keys: { m: keys, role: "admin" },
};

function showSignedIn(signedIn) {
  $("#signin").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  $("#who").textContent = signedIn ? `${session.me.org} · ${session.me.role}` : "";
  for (const a of document.querySelectorAll("nav a[data-role]")) a.hidden = !atLeast(a.dataset.role);
  route();
}

function route() {
  const [name0, id] = location.hash.replace(/^#\/?/, "").split("/");
  const name = VIEWS[name0] && atLeast(VIEWS[name0].role) ? name0 : "inbox";
  for (const v of document.querySelectorAll("[data-view]")) v.hidden = !session.me || v.dataset.view !== name;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!session.me) return;
  VIEWS[name].m.show();
  if (id && VIEWS[name].m.detail) VIEWS[name].m.detail(id);
}

async function signIn(ev) {
  ev.preventDefault();
  $("#signin-error").textContent = "";
  try {
    session.me = await api("POST", "/v1/session", { key: $("#key").value.trim() });
    $("#key").value = "";
    start();
  } catch (e) {
    $("#signin-error").textContent = e.message;
  }
}

async function signOut() {
  try {
    await api("DELETE", "/v1/session");
  } finally {
    signedOut();
  }
}

function signedOut() {
  session.me = null;
  stream.stop(true);
  for (const v of Object.values(VIEWS)) v.m.reset();
  showSignedIn(false);
  $("#key").focus();
}

function start() {
  showSignedIn(true);
  inbox.refresh(); // the badge counts from the first moment, whatever the view
  stream.follow(signedOut);
}

/**
 * The page's own measurements, for the browser tests and the dashboard bench:
 * events received and rendered, event-to-DOM lag percentiles, rows in the DOM, JS heap.
 */
window.kernosStats = (opts = {}) => ({
  ...stream.counters,
  lastSeq: stream.lastSeen(),
  ...activity.stats(Boolean(opts.seqs)),
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
});
window.kernosStats.resetLag = activity.resetLag;

async function boot() {
  $("#signin").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  for (const v of Object.values(VIEWS)) v.m.init();
  try {
    session.me = await api("GET", "/v1/session");
    if (!session.me.csrf) session.me = null; // a key, not a browser session: sign in
  } catch {
    session.me = null;
  }
  if (session.me) start();
  else showSignedIn(false);
}

boot();
