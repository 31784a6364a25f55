// Agents, schedules, leases and monitors: what works for the organisation without a person at
// the keyboard — its state, the budget it has used, when it runs next — with the controls the
// API offers (pause, resume, kill, run now, revoke). Refreshed when their events arrive.

import { $, api, atLeast, attempt, button, debounce, el, fmtAge, fmtTime, hostOperator } from "./core.js";
import { subscribe } from "./stream.js";

export const refresh = debounce(load, 1000);
const ENDED = new Set(["finished", "failed", "killed"]);

export function init() {
  subscribe((e) => {
    // Only while shown: a hidden view reloads when it is opened (show), not on every event.
    if (!$("#view-ops").hidden && (/^(agent|schedule|lease|monitor)\./.test(e.kind) || e.kind === "action.finished")) refresh();
  });
}

export function reset() {
  for (const id of ["#agents", "#schedules", "#leases", "#monitors"]) $(id).replaceChildren();
}

export function show() {
  refresh();
}

async function load() {
  await Promise.all([
    section("#agents", "/v1/agents", agent, "No agents."),
    section("#schedules", "/v1/schedules", schedule, "No schedules."),
    section("#leases", "/v1/leases", lease, "No leases."),
    hostOperator()
      ? section("#monitors", "/v1/monitors", monitor, "No monitors configured.")
      : Promise.resolve($("#monitors").replaceChildren(el("li.hint", {}, "Monitors watch the host: only its operator (an owner key of org local) sees them."))),
  ]);
}

async function section(sel, path, render, empty) {
  try {
    const list = await api("GET", path);
    $(sel).replaceChildren(...(list.length ? list.map(render) : [el("li.hint", {}, empty)]));
  } catch (e) {
    $(sel).replaceChildren(el("li.error", {}, e.message));
  }
}

/** A labelled bar: how much of a budget is used. */
function meter(label, used, max, fmt = (v) => String(v)) {
  if (max === null || max === undefined || max === 0) return el("span.meter-text", {}, `${label} ${fmt(used)}`);
  return el(
    "span.meter",
    { title: `${label}: ${fmt(used)} of ${fmt(max)}` },
    `${label} `,
    el("meter", { min: "0", max: String(max), value: String(used), high: String(max * 0.8), "aria-label": `${label} used` }),
    ` ${fmt(used)} / ${fmt(max)}`,
  );
}

const act = (what, path) => () => attempt(what, async () => {
  await api("POST", path);
  refresh();
});

function agent(a) {
  const ended = ENDED.has(a.state);
  const may = atLeast("operator");
  return el(
    "li.card",
    { data: { agent: a.agent, state: a.state } },
    el("div.head", {}, el("strong", {}, a.goal), " ", el(`span.state.state-${a.state}`, {}, a.state)),
    el("div.hint", {}, `${a.agent} · ${a.owner} · lane ${a.lane} · updated ${fmtAge(a.updated_ms)}${a.reason ? ` · ${a.reason}` : ""}`),
    el(
      "div.meters",
      {},
      meter("steps", a.used.steps, a.budget.max_steps),
      meter("tokens", a.used.tokens, a.budget.max_tokens),
      meter("time", Math.round(a.used.time_s), a.budget.max_time_s, (v) => `${v} s`),
      meter("units", a.used.units, a.budget.max_units, (v) => v.toFixed(2)),
      meter("cost", a.used.cost_usd, a.budget.max_cost_usd, (v) => `$${v.toFixed(4)}`),
    ),
    a.answer ? el("p", {}, a.answer) : null,
    el(
      "div.buttons",
      { hidden: !may || ended },
      a.state === "paused" ? button("Resume", "approve", act("Resume", `/v1/agents/${a.agent}/resume`)) : button("Pause", "decline", act("Pause", `/v1/agents/${a.agent}/pause`)),
      button("Kill", "danger", act("Kill", `/v1/agents/${a.agent}/kill`)),
    ),
  );
}

function schedule(s) {
  const may = atLeast("operator");
  return el(
    "li.card",
    { data: { schedule: s.schedule, paused: String(s.paused) } },
    el("div.head", {}, el("strong", {}, s.request || s.plan?.steps?.map((x) => `${x.tool}.${x.action}`).join(", ")), " ", el(`span.state.state-${s.paused ? "paused" : "active"}`, {}, s.paused ? "paused" : "active")),
    el("div.hint", {}, `${s.describe} · next ${s.next_due ? `${fmtTime(Date.parse(s.next_due))} (${fmtAge(Date.parse(s.next_due))})` : "—"}${s.running ? ` · running ${s.running}` : ""} · if missed: ${s.missed}`),
    s.last_run ? el("div.hint", {}, `last run: ${s.last_run.status || ""} ${s.last_run.action || ""}`) : null,
    el(
      "div.buttons",
      { hidden: !may },
      s.paused ? button("Resume", "approve", act("Resume", `/v1/schedules/${s.schedule}/resume`)) : button("Pause", "decline", act("Pause", `/v1/schedules/${s.schedule}/pause`)),
      button("Run now", "approve", act("Run", `/v1/schedules/${s.schedule}/run`)),
      button("Delete", "danger", () => attempt("Delete", async () => {
        await api("DELETE", `/v1/schedules/${s.schedule}`);
        refresh();
      })),
    ),
  );
}

function lease(l) {
  const may = atLeast("operator") && l.state === "active";
  return el(
    "li.card",
    { data: { lease: l.id, state: l.state } },
    el("div.head", {}, el("strong", {}, `${l.grantee}`), " ", el(`span.state.state-${l.state}`, {}, l.state)),
    el("div.hint", {}, `actions ${l.capabilities.actions.join(", ") || "—"} · effects ${l.capabilities.effects.join(", ") || "—"} · up to ${l.max_risk} risk · expires ${fmtAge(l.expires_ms)}`),
    el("div.meters", {}, meter("steps", l.used.steps, l.budget.max_steps), meter("units", l.used.units, l.budget.max_units, (x) => x.toFixed(2))),
    el("div.buttons", { hidden: !may }, button("Revoke", "danger", () => attempt("Revoke", async () => {
      await api("DELETE", `/v1/leases/${l.id}`);
      refresh();
    }))),
  );
}

function monitor(m) {
  return el(
    "li.card",
    { data: { monitor: m.name, state: m.state } },
    el("div.head", {}, el("strong", {}, m.name), " ", el(`span.state.state-${m.state}`, {}, m.state)),
    el("div.hint", {}, `${m.value === null || m.value === undefined ? "" : `value ${m.value} · `}${m.message || ""}${m.since_ms ? ` · since ${fmtAge(m.since_ms)}` : ""}`),
    m.remediation ? el("div.hint", {}, `remediation: ${m.remediation}`) : null,
  );
}
