// The approvals inbox: every step of this organisation waiting for an answer — from requests,
// agents, schedules, monitors and MCP clients alike, since they all wait in the same place —
// with its age, risk and what it would change, answered one by one or in batch. Buttons show
// only for steps this role may answer; the API refuses the rest anyway.

import { $, api, atLeast, button, debounce, el, fmtAge, notify } from "./core.js";
import { subscribe } from "./stream.js";

let list = [];

export const refresh = debounce(load, 300);

export function init() {
  subscribe((e) => {
    // An ending action can take a waiting step with it; others cannot change the inbox.
    if (e.kind.startsWith("approval.") || (e.kind === "action.finished" && list.length)) refresh();
  });
  $("#inbox-all").addEventListener("change", (ev) => {
    for (const c of document.querySelectorAll("#approvals input.pick")) c.checked = ev.target.checked;
    picked();
  });
  $("#inbox-approve").addEventListener("click", () => batch(true));
  $("#inbox-decline").addEventListener("click", () => batch(false));
  // Ages move on even when nothing happens.
  setInterval(() => {
    for (const s of document.querySelectorAll("#approvals [data-since]")) s.textContent = fmtAge(Number(s.dataset.since));
  }, 5000);
}

export function reset() {
  list = [];
  $("#approvals").replaceChildren();
  badge(0);
}

export function show() {
  refresh();
}

async function load() {
  try {
    list = await api("GET", "/v1/state/approvals");
  } catch {
    return;
  }
  list.sort((a, b) => a.requested_ms - b.requested_ms); // oldest first: it expires first
  // Keyed update: a step already shown keeps its element (its focus, its selection, a button
  // being pressed); only new steps are built and answered ones removed.
  const ul = $("#approvals");
  const have = new Map([...ul.children].map((li) => [li.dataset.approval, li]));
  const rows = list.map((a) => have.get(a.approval) || item(a));
  rows.forEach((li, i) => {
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
  while (ul.children.length > rows.length) ul.lastElementChild.remove();
  badge(list.length);
  const answerable = list.some(mayAnswer);
  $("#inbox-batch").hidden = !answerable;
  $("#inbox-empty").hidden = list.length > 0;
  picked();
}

function badge(n) {
  const count = $("#inbox-count");
  count.textContent = String(n);
  count.classList.toggle("zero", n === 0);
  document.title = n ? `(${n}) Kernos` : "Kernos";
}

const mayAnswer = (a) => atLeast(a.min_role);

function item(a) {
  const may = mayAnswer(a);
  const pick = el("input.pick", { type: "checkbox", value: a.approval, "aria-label": `select step ${a.step + 1}: ${a.name}`, hidden: !may, onchange: picked });
  const changes = a.changes.length
    ? el("ul.changes", {}, a.changes.map((c) => el("li", {}, c)))
    : el("p.hint", {}, "The preview could not say what it would change.");
  const yes = button("Approve", "approve", () => answer([a.approval], true));
  const no = button("Decline", "decline", () => answer([a.approval], false));
  yes.hidden = no.hidden = !may;
  return el(
    "li.approval",
    { data: { approval: a.approval, risk: a.risk } },
    el("div.head", {}, pick, el("strong", {}, `step ${a.step + 1}: ${a.name}`), " ", el(`span.risk.risk-${a.risk}`, {}, `${a.risk} risk`)),
    el("code.args", {}, JSON.stringify(a.args)),
    el("div.hint", {}, `asked by ${a.requested_by}${a.agent ? ` (agent ${a.agent})` : ""} `, el("span", { data: { since: a.requested_ms } }, fmtAge(a.requested_ms)), ` · declined without an answer ${fmtAge(a.expires_ms)}`),
    el("div.hint", {}, a.reasons.join("; ")),
    el("details", { open: true }, el("summary", {}, "What it would change (dry run)"), changes),
    may ? null : el("p.hint", {}, `Needs a ${a.min_role} or above to answer.`),
    el("div.buttons", {}, yes, no),
  );
}

function picked() {
  const n = document.querySelectorAll("#approvals input.pick:checked").length;
  $("#inbox-picked").textContent = n ? `${n} selected` : "";
  $("#inbox-approve").disabled = $("#inbox-decline").disabled = n === 0;
}

async function batch(approve) {
  const ids = [...document.querySelectorAll("#approvals input.pick:checked")].map((c) => c.value);
  await answer(ids, approve);
  $("#inbox-all").checked = false;
}

/** Answers each step through the one approval endpoint; reports the ones refused. */
async function answer(ids, approve) {
  const results = await Promise.allSettled(ids.map((id) => api("POST", `/v1/approvals/${id}`, { approve })));
  const refused = results.filter((r) => r.status === "rejected");
  if (refused.length) notify(`${refused.length} of ${ids.length} not answered: ${refused[0].reason.message}`);
  else if (ids.length > 1) notify(`${ids.length} steps ${approve ? "approved" : "declined"}`, false);
  await load();
}
