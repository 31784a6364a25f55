// History: the organisation's transactions, newest first, each with what it did and an Undo
// button while it can be undone (an undo is itself a request on the one path: queued, checked
// by policy, run confined, journaled).

import { $, api, atLeast, attempt, button, debounce, el, fmtAge, notify, table } from "./core.js";
import { subscribe } from "./stream.js";

let limit = 50;

export const refresh = debounce(load, 500);

export function init() {
  subscribe((e) => {
    // Only while shown: a hidden view reloads when it is opened (show), not on every event.
    if (!$("#view-history").hidden && (e.kind === "tx.finished" || e.kind === "tx.undone" || e.kind === "action.finished")) refresh();
  });
  $("#history-more").addEventListener("click", () => {
    limit = Math.min(limit * 2, 1000);
    load();
  });
}

export function reset() {
  limit = 50;
  $("#transactions").replaceChildren();
  $("#tx-detail").replaceChildren();
}

export function show() {
  refresh();
}

async function load() {
  let list;
  try {
    list = await api("GET", `/v1/state/transactions?limit=${limit}`);
  } catch {
    return;
  }
  $("#transactions").replaceChildren(...list.map(row));
  $("#history-empty").hidden = list.length > 0;
  $("#history-more").hidden = list.length < limit || limit >= 1000;
}

function row(t) {
  const status = t.undone ? "undone" : t.status || "running";
  const undo = t.undoable && !t.undone && atLeast("operator")
    ? button("Undo", "undo", () => undoTx(t.tx), `undo transaction ${t.tx}`)
    : null;
  return el(
    "li.tx",
    { data: { tx: t.tx, status } },
    el("div.head", {}, el("a", { href: `#/history/${t.tx}` }, t.request || t.steps.join(", ")), " ", el(`span.status-${status}`, {}, status)),
    el("div.hint", {}, `${t.steps.join(" → ")} · ${t.actor} · ${fmtAge(t.started_ms)}`),
    undo,
  );
}

async function undoTx(tx) {
  const r = await attempt("Undo", () => api("POST", `/v1/undo/${tx}`, {}));
  if (r) notify(`Undo queued as action ${r.action}`, false);
  refresh();
}

/** The transaction's events in order: what each step did and what was recorded to undo it. */
export async function detail(tx) {
  const box = $("#tx-detail");
  let events;
  try {
    events = await api("GET", `/v1/state/transactions/${tx}`);
  } catch (e) {
    box.replaceChildren(el("p.error", {}, e.message));
    return;
  }
  box.replaceChildren(
    el("h2", {}, `Transaction ${tx}`),
    table(
      [
        { name: "seq" },
        { name: "time", cell: (e) => new Date(e.ts_ms).toLocaleTimeString() },
        { name: "kind" },
        { name: "step", cell: (e) => (e.payload?.step === undefined ? "" : e.payload.step + 1) },
        { name: "what", cell: (e) => summary(e) },
      ],
      events,
    ),
  );
  box.scrollIntoView({ block: "nearest" });
}

function summary(e) {
  const p = e.payload || {};
  if (p.name) return `${p.name} ${p.risk ? `(${p.risk})` : ""}`;
  if (p.error) return p.error;
  if (p.result?.output?.summary) return p.result.output.summary;
  if (p.status) return p.status;
  return "";
}
