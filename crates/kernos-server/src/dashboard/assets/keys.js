// Keys (admins and owners): the organisation's API keys — never their secrets, which are shown
// once, here, when a key is created — with create and revoke.

import { $, api, atLeast, attempt, button, el, fmtAge, session } from "./core.js";

const ROLES = ["viewer", "operator", "admin", "owner"];

export function init() {
  $("#key-create").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { role: $("#key-role").value, label: $("#key-label").value.trim() || undefined };
    const k = await attempt("Create key", () => api("POST", "/v1/keys", body));
    if (k) {
      $("#key-secret").replaceChildren(
        el("p", {}, `Key ${k.id} (${k.role}) created. Copy its secret now — it is not shown again:`),
        el("code.secret", {}, k.key),
      );
      $("#key-secret").hidden = false;
      $("#key-label").value = "";
      load();
    }
  });
}

export function reset() {
  $("#keys").replaceChildren();
  $("#key-secret").replaceChildren();
  $("#key-secret").hidden = true;
}

export function show() {
  // Only as high as one's own role may be granted (the API checks it too).
  const mine = ROLES.indexOf(session.me.role);
  $("#key-role").replaceChildren(...ROLES.slice(0, mine + 1).map((r) => el("option", { value: r, selected: r === "viewer" }, r)));
  load();
}

async function load() {
  if (!atLeast("admin")) return;
  let list;
  try {
    list = await api("GET", "/v1/keys");
  } catch (e) {
    $("#keys").replaceChildren(el("li.error", {}, e.message));
    return;
  }
  list.sort((a, b) => Number(a.revoked) - Number(b.revoked) || b.created_ms - a.created_ms);
  $("#keys").replaceChildren(...list.map(row));
}

function row(k) {
  const self = k.id === session.me.key_id;
  return el(
    "li.card",
    { data: { key: k.id, revoked: String(k.revoked) } },
    el("div.head", {}, el("code", {}, k.id), " ", el(`span.state.state-${k.revoked ? "revoked" : "active"}`, {}, k.revoked ? "revoked" : k.role), self ? el("span.hint", {}, " (this session)") : null),
    el("div.hint", {}, `${k.label || "no label"} · created ${fmtAge(k.created_ms)} by ${k.created_by}`),
    k.revoked || self
      ? null
      : el("div.buttons", {}, button("Revoke", "danger", () => attempt("Revoke", async () => {
        await api("DELETE", `/v1/keys/${k.id}`);
        load();
      }))),
  );
}
