// The organisation's event stream, read with fetch (not EventSource) so that every reconnect —
// a network blip, a daemon restart — resumes exactly after the last event seen (Last-Event-ID)
// and an event is never handed to the views twice.

import { $, notify } from "./core.js";

const subscribers = [];
let ctl = null; // AbortController of the current stream
let lastSeq = null;
let holding = null; // live events held while the recent past is being fetched
const BACKFILL = 200; // events of the recent past shown on arrival

/** Counters for the page's own measurements (see `kernosStats` in app.js). */
export const counters = { received: 0, duplicates: 0, reconnects: 0, resyncs: 0 };

/** Calls `f(event)` for each new event, in journal order. */
export function subscribe(f) {
  subscribers.push(f);
}

/** The sequence number of the newest event received. */
export const lastSeen = () => lastSeq;

function setLive(state) {
  const s = $("#live");
  s.dataset.state = state;
  s.textContent = state === "live" ? "● live" : state === "reconnecting" ? "○ reconnecting…" : "";
  s.title = state === "live" ? `following the event stream (last event ${lastSeq ?? "—"})` : "";
}

/** Follows the stream until `stop()`; `onSignedOut` runs if the session ends (401). */
export async function follow(onSignedOut) {
  stop();
  const mine = new AbortController();
  ctl = mine;
  let delay = 250;
  while (ctl === mine) {
    try {
      const headers = lastSeq === null ? {} : { "Last-Event-ID": String(lastSeq) };
      const r = await fetch("/v1/events", { headers, signal: mine.signal, credentials: "same-origin" });
      if (r.status === 401) {
        setLive("");
        onSignedOut();
        return;
      }
      if (!r.ok || !r.body) throw new Error(String(r.status));
      if (lastSeq === null && holding === null) backfill(mine);
      setLive("live");
      delay = 250;
      await readFrames(r.body.getReader(), onFrame);
    } catch {
      if (mine.signal.aborted) return;
    }
    if (ctl !== mine) return;
    setLive("reconnecting");
    counters.reconnects += 1;
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 4000);
  }
}

/** Stops following (sign-out). The resume point is forgotten with the session. */
export function stop(forget = false) {
  if (ctl) ctl.abort();
  ctl = null;
  if (forget) {
    lastSeq = null;
    holding = null;
  }
  setLive("");
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

/**
 * The recent past, so the page does not open empty. The stream is connected first and its
 * events held; then the newest events are read from the journal. Everything journaled after
 * the stream began is in the stream, so the two together have no gap, and the overlap is
 * dropped by sequence number.
 */
async function backfill(mine) {
  const held = [];
  holding = held;
  let past = [];
  try {
    const r = await fetch(`/v1/state/journal?limit=${BACKFILL}`, { signal: mine.signal, credentials: "same-origin" });
    if (r.ok) past = (await r.json()).events.reverse();
  } catch {
    // Shown live only; the Journal view pages the past.
  }
  if (holding !== held) return; // signed out meanwhile
  const live = held;
  holding = null;
  const first = live.length ? live[0].seq : Infinity;
  for (const e of past) {
    if (e.seq >= first) break;
    e.backfill = true;
    deliver(e);
  }
  for (const e of live) deliver(e);
}

function deliver(e) {
  counters.received += 1;
  for (const s of subscribers) s(e);
}

function onFrame(f) {
  if (f.event === "resync") {
    counters.resyncs += 1;
    notify("The stream skipped events it could no longer replay; the Journal view has them all.");
    return;
  }
  if (!f.data || f.id === null) return;
  const seq = Number(f.id);
  if (lastSeq !== null && seq <= lastSeq) {
    counters.duplicates += 1;
    return;
  }
  let e;
  try {
    e = JSON.parse(f.data);
  } catch {
    return;
  }
  lastSeq = seq;
  if (holding !== null) holding.push(e);
  else deliver(e);
}
