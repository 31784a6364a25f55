// The Kernos dashboard: one page over the daemon's own API and event stream. No framework and
// no build step: what the binary embeds is what runs. The session cookie is HttpOnly; the CSRF
// token lives only in this module's memory (GET /v1/session gives it again after a reload).

const $ = (sel) => document.querySelector(sel);
let me = null; // {org, role, csrf}
let stream = null; // AbortController of the event stream
const MAX_EVENTS = 500; // the activity list keeps this many rows: the DOM stays bounded

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && me && me.csrf) headers["X-CSRF-Token"] = me.csrf;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && data.detail) || `${r.status}`);
  return data;
}

const canAct = () => me && me.role !== "viewer";

function show(signedIn) {
  $("#signin").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  $("#who").textContent = signedIn ? `${me.org} · ${me.role}` : "";
  route();
}

function route() {
  const name = (location.hash.replace(/^#\/?/, "") || "inbox").split("/")[0];
  for (const v of document.querySelectorAll("[data-view]")) {
    v.hidden = !me || v.dataset.view !== name;
  }
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("#ask").hidden = !canAct();
}

async function signIn(ev) {
  ev.preventDefault();
  $("#signin-error").textContent = "";
  try {
    me = await api("POST", "/v1/session", { key: $("#key").value.trim() });
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
    stop();
  }
}

function stop() {
  me = null;
  if (stream) stream.abort();
  stream = null;
  $("#approvals").replaceChildren();
  $("#events").replaceChildren();
  show(false);
}

function start() {
  show(true);
  refreshInbox();
  follow();
}

// The approvals inbox: everything waiting that this role may see, answered inline.
async function refreshInbox() {
  let list = [];
  try {
    list = await api("GET", "/v1/state/approvals");
  } catch {
    return;
  }
  const ul = $("#approvals");
  ul.replaceChildren(...list.map(approvalItem));
  const count = $("#inbox-count");
  count.textContent = String(list.length);
  count.classList.toggle("zero", list.length === 0);
  $("#inbox-empty").hidden = list.length > 0;
}

function approvalItem(a) {
  const li = document.createElement("li");
  li.className = "approval";
  li.dataset.approval = a.approval;
  const head = document.createElement("div");
  const risk = document.createElement("span");
  risk.className = `risk-${a.risk}`;
  risk.textContent = `${a.risk} risk`;
  head.append(`step ${a.step + 1}: ${a.name} `, risk);
  const args = document.createElement("code");
  args.textContent = JSON.stringify(a.args);
  const why = document.createElement("div");
  why.className = "hint";
  const age = Math.round((Date.now() - a.requested_ms) / 1000);
  why.textContent = `asked by ${a.requested_by} ${age} s ago; ${a.reasons.join("; ")}`;
  const changes = document.createElement("ul");
  for (const c of a.changes) {
    const item = document.createElement("li");
    item.textContent = `would ${c}`;
    changes.append(item);
  }
  const yes = button("Approve", "approve", () => answer(a.approval, true));
  const no = button("Decline", "decline", () => answer(a.approval, false));
  yes.hidden = no.hidden = !canAct();
  li.append(head, args, why, changes, yes, no);
  return li;
}

function button(text, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

async function answer(id, approve) {
  try {
    await api("POST", `/v1/approvals/${id}`, { approve });
  } catch (e) {
    alert(e.message);
  }
  refreshInbox();
}

// Ask: plain language in, the action followed on the event stream to its end. An action can
// end before POST /v1/actions has answered (a fast read), so the stream's events are kept per
// action for a while and replayed once the answer names the action.
let asked = null;
const recent = new Map(); // action id -> its events seen so far (the newest 100 actions)
async function ask(ev) {
  ev.preventDefault();
  const body = { request: $("#request").value, dry_run: $("#dry-run").checked };
  $("#ask-steps").replaceChildren();
  try {
    const r = await api("POST", "/v1/actions", body);
    asked = r.action;
    setStatus("queued");
    for (const e of recent.get(asked) || []) onAskEvent(e);
  } catch (e) {
    setStatus(`refused: ${e.message}`);
  }
}

function setStatus(s) {
  const out = $("#ask-result");
  out.textContent = s;
  out.className = `status-${s.split(":")[0]}`;
}

function onAskEvent(e) {
  if (!asked || e.action !== asked) return;
  if (e.kind === "approval.requested") setStatus("waiting for approval (see Approvals)");
  if (e.kind === "step.finished" || e.kind === "step.failed") {
    const p = document.createElement("p");
    p.textContent = `step ${e.payload.step + 1}: ${e.kind === "step.finished" ? "done" : e.payload.error}`;
    $("#ask-steps").append(p);
  }
  if (e.kind === "action.finished") {
    setStatus(e.payload.error ? `${e.payload.status}: ${e.payload.error}` : e.payload.status);
  }
}

// The event stream, read with fetch so a reconnect resumes exactly after the last event seen
// (Last-Event-ID) and nothing is shown twice.
let lastSeq = null;
async function follow() {
  const ctl = new AbortController();
  stream = ctl;
  while (me && stream === ctl) {
    try {
      const headers = lastSeq === null ? {} : { "Last-Event-ID": String(lastSeq) };
      const r = await fetch("/v1/events", { headers, signal: ctl.signal, credentials: "same-origin" });
      if (r.status === 401) return stop();
      if (!r.ok || !r.body) throw new Error(String(r.status));
      await readFrames(r.body.getReader(), onFrame);
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

async function readFrames(reader, onFrameFn) {
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const f = { id: null, event: "message", data: "" };
      for (const line of frame.split("\n")) {
        const i = line.indexOf(":");
        if (i <= 0) continue;
        const k = line.slice(0, i);
        const v = line.slice(i + 1).replace(/^ /, "");
        if (k === "data") f.data += f.data ? `\n${v}` : v;
        else if (k === "id" || k === "event") f[k] = v;
      }
      onFrameFn(f);
    }
  }
}

function onFrame(f) {
  if (f.event === "resync" || !f.data) return;
  const seq = Number(f.id);
  if (lastSeq !== null && seq <= lastSeq) return;
  lastSeq = seq;
  let e;
  try {
    e = JSON.parse(f.data);
  } catch {
    return;
  }
  addEvent(e);
  if (e.action) {
    if (!recent.has(e.action)) {
      recent.set(e.action, []);
      if (recent.size > 100) recent.delete(recent.keys().next().value);
    }
    recent.get(e.action).push(e);
  }
  onAskEvent(e);
  if (e.kind.startsWith("approval.") || e.kind === "action.finished") refreshInbox();
}

function addEvent(e) {
  const ul = $("#events");
  const li = document.createElement("li");
  li.className = "event";
  li.dataset.seq = String(e.seq);
  li.dataset.kind = e.kind;
  const when = new Date(e.ts_ms).toLocaleTimeString();
  li.textContent = `${e.seq} ${when} ${e.kind} ${e.actor}${e.action ? ` ${e.action}` : ""}`;
  li.hidden = !matchesFilter(e.kind);
  ul.prepend(li);
  while (ul.childElementCount > MAX_EVENTS) ul.lastElementChild.remove();
}

function matchesFilter(kind) {
  const f = $("#filter").value.trim();
  return !f || kind.startsWith(f);
}

function refilter() {
  for (const li of document.querySelectorAll("li.event")) li.hidden = !matchesFilter(li.dataset.kind);
}

async function boot() {
  $("#signin").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#ask").addEventListener("submit", ask);
  $("#filter").addEventListener("input", refilter);
  window.addEventListener("hashchange", route);
  try {
    me = await api("GET", "/v1/session");
    if (!me.csrf) me = null; // a key, not a browser session: sign in
  } catch {
    me = null;
  }
  if (me) start();
  else show(false);
}

boot();
