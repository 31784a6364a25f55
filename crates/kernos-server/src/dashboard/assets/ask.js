// Ask: plain language in; the plan, each step's effects, risk and reversibility as policy
// decided them; approve, cancel or run a preview for real; then live progress and the result
// tables — all read from the action's own events, as any other client would see them.
//
// An action can end before POST /v1/actions has answered (a fast read), so the stream's events
// are kept per action for a while and replayed once the answer names the action.

import { $, api, atLeast, attempt, button, el, table } from "./core.js";
import { subscribe } from "./stream.js";

let asked = null; // {action, request, dryRun}
const recent = new Map(); // action id -> its events seen so far (the newest 100 actions)
let catalog = null; // "tool.action" -> {summary, reversibility}
const steps = new Map(); // step index -> its <li>

export function init() {
  $("#ask").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit($("#request").value, $("#dry-run").checked);
  });
  subscribe((e) => {
    if (!e.action) return;
    if (!recent.has(e.action)) {
      recent.set(e.action, []);
      if (recent.size > 100) recent.delete(recent.keys().next().value);
    }
    recent.get(e.action).push(e);
    if (asked && e.action === asked.action) onEvent(e);
  });
}

export function reset() {
  asked = null;
  recent.clear();
  catalog = null;
  $("#ask-steps").replaceChildren();
  $("#ask-result").textContent = "";
  $("#ask-controls").replaceChildren();
}

export function show() {
  $("#ask").hidden = !atLeast("operator");
  $("#ask-readonly").hidden = atLeast("operator");
  if (!catalog) loadCatalog();
}

async function loadCatalog() {
  catalog = new Map();
  try {
    for (const t of await api("GET", "/v1/state/tools")) {
      for (const a of t.actions) catalog.set(`${t.name}.${a.name}`, a);
    }
  } catch {
    catalog = null;
  }
}

async function submit(request, dryRun) {
  $("#ask-steps").replaceChildren();
  $("#ask-controls").replaceChildren();
  steps.clear();
  asked = null;
  setStatus("submitting");
  try {
    const r = await api("POST", "/v1/actions", { request, dry_run: dryRun });
    asked = { action: r.action, request, dryRun };
    setStatus("queued");
    controls("queued");
    for (const e of recent.get(asked.action) || []) onEvent(e);
  } catch (e) {
    setStatus(`refused: ${e.message}`);
  }
}

function setStatus(s) {
  const out = $("#ask-result");
  out.textContent = s;
  out.className = `status-${s.split(/[: ]/)[0]}`;
}

/** The buttons that make sense now: cancel while it runs; run for real after a preview. */
function controls(state) {
  const c = $("#ask-controls");
  c.replaceChildren();
  if (!asked) return;
  const id = asked.action;
  if (["queued", "running", "waiting"].includes(state)) {
    c.append(button("Cancel", "decline", () => attempt("Cancel", () => api("POST", `/v1/actions/${id}/cancel`))));
  }
  if (state === "previewed") {
    const { request } = asked;
    c.append(button("Run it for real", "approve", () => submit(request, false)));
  }
}

function onEvent(e) {
  const p = e.payload || {};
  switch (e.kind) {
    case "plan.created":
      planned(p.plan);
      setStatus(asked.dryRun ? "previewing" : "running");
      controls("running");
      break;
    case "plan.failed":
      setStatus(`failed: ${p.error || "no plan"}`);
      controls("ended");
      break;
    case "step.decided":
      decided(p);
      break;
    case "approval.requested":
      waiting(p);
      setStatus("waiting for approval");
      controls("waiting");
      break;
    case "approval.decided":
      stepLine(p.step, "answer", `${p.approved ? "approved" : "declined"}${p.reason ? `: ${p.reason}` : ""}`);
      $(`#ask-steps li[data-step="${p.step}"] .buttons`)?.remove();
      break;
    case "step.started":
      stepLine(p.step, "state", "running…");
      break;
    case "step.finished":
      finished(p);
      break;
    case "step.failed":
      stepLine(p.step, "state", `failed: ${p.error}`);
      break;
    case "action.finished":
      setStatus(p.error ? `${p.status}: ${p.error}` : p.status);
      controls(p.status === "previewed" ? "previewed" : "ended");
      break;
    default:
  }
}

function planned(plan) {
  const ol = $("#ask-steps");
  ol.replaceChildren();
  steps.clear();
  (plan?.steps || []).forEach((s, i) => {
    const name = `${s.tool}.${s.action}`;
    const info = catalog?.get(name);
    const li = el(
      "li.step",
      { data: { step: i } },
      el("div.head", {}, el("strong", {}, name), " ", el("span.risk", {}, ""), " ", el("span.hint.rev", {}, info ? info.reversibility : "")),
      el("code.args", {}, JSON.stringify(s.args)),
      s.why ? el("div.hint", {}, s.why) : null,
      el("ul.effects"),
      el("div.answer.hint"),
      el("div.state"),
      el("div.result"),
    );
    steps.set(i, li);
    ol.append(li);
  });
}

function decided(p) {
  const li = steps.get(p.step);
  if (!li) return;
  const risk = li.querySelector(".risk");
  risk.textContent = `${p.risk} risk · ${p.decision}`;
  risk.className = `risk risk-${p.risk}`;
  li.querySelector(".effects").replaceChildren(
    ...(p.effects || []).map((f) => el("li", {}, `${f.kind} ${f.target?.path || f.target?.name || f.target?.unit || JSON.stringify(f.target)}`)),
  );
  if (p.reasons?.length) stepLine(p.step, "answer", p.reasons.join("; "));
}

function waiting(p) {
  const li = steps.get(p.step);
  if (!li) return;
  li.querySelector(".effects").append(...(p.changes || []).map((c) => el("li.change", {}, `would ${c}`)));
  if (!atLeast(p.min_role)) {
    stepLine(p.step, "answer", `waiting for a ${p.min_role} (see Approvals)`);
    return;
  }
  const answer = (approve) => attempt("Answer", () => api("POST", `/v1/approvals/${p.approval}`, { approve }));
  li.append(el("div.buttons", {}, button("Approve", "approve", () => answer(true)), button("Decline", "decline", () => answer(false))));
}

function finished(p) {
  stepLine(p.step, "state", `done in ${p.wall_ms ?? "?"} ms`);
  const li = steps.get(p.step);
  const out = p.result?.output;
  if (!li || !out) return;
  const parts = [];
  if (out.summary) parts.push(el("p", {}, out.summary));
  if (out.columns?.length) parts.push(table(out.columns, out.rows || [], "result-table"));
  if (out.text) parts.push(el("pre", {}, out.text));
  if (out.changes?.length) parts.push(el("ul.changes", {}, out.changes.map((c) => el("li", {}, typeof c === "string" ? c : JSON.stringify(c)))));
  if (out.truncated) parts.push(el("p.hint", {}, "(cut: the full output is in the journal)"));
  li.querySelector(".result").replaceChildren(...parts);
}

function stepLine(step, cls, text) {
  const li = steps.get(step);
  if (li) li.querySelector(`.${cls}`).textContent = text;
}
