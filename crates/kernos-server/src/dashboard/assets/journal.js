// Journal: the organisation's events read from the daemon page by page (the Activity list
// keeps only the newest), with the hash of each, and the whole chain's verify status.

import { $, api, atLeast, el, fmtAge, fmtStamp, table } from "./core.js";

let before = null; // paging cursor: the next page ends before this seq

export function init() {
  $("#journal-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    before = null;
    load(false);
  });
  $("#journal-more").addEventListener("click", () => load(true));
  $("#journal-verify").addEventListener("click", () => verify(true));
}

export function reset() {
  before = null;
  $("#journal-events").replaceChildren();
  $("#chain").replaceChildren();
}

export function show() {
  // A fresh run reads the whole journal: the API lets only admins ask for one.
  $("#journal-verify").hidden = !atLeast("admin");
  before = null;
  load(false);
  verify(false);
}

async function load(more) {
  const kind = $("#journal-kind").value.trim();
  const q = new URLSearchParams({ limit: "100" });
  if (kind) q.set("kind", kind);
  if (more && before !== null) q.set("before", String(before));
  let page;
  try {
    page = await api("GET", `/v1/state/journal?${q}`);
  } catch (e) {
    $("#journal-events").replaceChildren(el("p.error", {}, e.message));
    return;
  }
  before = page.next_before ?? null;
  $("#journal-more").hidden = before === null;
  const t = table(
    [
      { name: "seq" },
      { name: "when", cell: (e) => fmtStamp(e.ts_ms) },
      { name: "kind" },
      { name: "actor" },
      { name: "action", cell: (e) => e.action || "" },
      { name: "hash", cell: (e) => el("code", { title: e.hash }, (e.hash || "").slice(0, 12)) },
    ],
    page.events,
    "journal-table",
  );
  if (more) $("#journal-events").append(t);
  else $("#journal-events").replaceChildren(t);
}

async function verify(fresh) {
  const box = $("#chain");
  box.replaceChildren(el("span.hint", {}, "verifying the chain…"));
  let v;
  try {
    v = await api("GET", `/v1/state/journal/verify${fresh ? "?fresh=true" : ""}`);
  } catch (e) {
    box.replaceChildren(el("span.error", {}, `cannot verify: ${e.message}`));
    return;
  }
  box.dataset.ok = String(v.ok);
  box.replaceChildren(
    el(`strong.${v.ok ? "ok" : "error"}`, {}, v.ok ? "✔ chain intact" : "✘ chain broken"),
    ` · ${v.events} events up to #${v.head_seq} · head ${String(v.head_hash || "").slice(0, 16)}… · checked ${fmtAge(v.checked_ms)} in ${v.took_ms} ms`,
  );
  if (v.problem) box.append(el("p.error", {}, v.problem));
}
