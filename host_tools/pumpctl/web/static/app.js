// pumpctl ui: what every page shares. The server renders the pages; this script polls
// /api/status every second, keeps the alarm lights and the (muted by default) sound in step
// with the pump's annunciation, and sends actions as POST with this page's token.
// No libraries, nothing from elsewhere. Research and education prototype: never for human use.
"use strict";

const PUMP = {
  token: document.querySelector('meta[name="pumpctl-token"]').content,
  status: null,           // the last /api/status reply
  listeners: [],          // functions told each new status
};

// ---- requests ---------------------------------------------------------------------------------
async function apiGet(path) {
  const r = await fetch(path, {headers: {"Accept": "application/json"}});
  return answer(r);
}

async function apiPost(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Pumpctl-Token": PUMP.token},
    body: JSON.stringify(body || {}),
  });
  return answer(r);
}

async function answer(r) {
  let d = null;
  try { d = await r.json(); } catch (e) { d = {error: {code: "HTTP", message: "the app answered " + r.status}}; }
  if (!r.ok || (d && d.error)) {
    const err = new Error((d && d.error && d.error.message) || ("refused (" + r.status + ")"));
    err.code = d && d.error && d.error.code;
    err.overrides = (d && d.error && d.error.overrides_needed) || [];
    throw err;
  }
  return d;
}

// ---- small DOM helpers ----------------------------------------------------------------------------
function $(sel, root) { return (root || document).querySelector(sel); }
function $$(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
function toast(msg, isError) {
  const box = $("#toast");
  const d = el("div", {class: isError ? "error" : "", text: msg});
  box.append(d);
  setTimeout(() => d.remove(), isError ? 9000 : 4000);
}
// Show a result or a refusal (the pump's sentence and code) in `target`.
function show(target, text, kind) {
  const t = typeof target === "string" ? $(target) : target;
  t.textContent = text;
  t.className = "result " + (kind || "okmsg");
}
function showError(target, err) {
  show(target, err.message + (err.code ? "  [" + err.code + "]" : ""), "error");
}
// Wire a button to an async action; the button is disabled while it runs.
function onClick(sel, fn) {
  const b = typeof sel === "string" ? $(sel) : sel;
  if (!b) return;
  b.addEventListener("click", async (ev) => {
    ev.preventDefault();
    b.disabled = true;
    try { await fn(ev); } finally { b.disabled = false; }
  });
}
function formData(form) {
  const out = {};
  for (const i of $$("input, select", form)) {
    if (!i.name) continue;
    out[i.name] = i.type === "checkbox" ? i.checked : i.value;
  }
  return out;
}
function fill(root, words) {
  for (const e of $$("[data-w]", root)) {
    const v = words[e.dataset.w];
    if (v !== undefined) e.textContent = v;
  }
}

// ---- the alarm sound: the pump's IEC 60601-1-8 patterns (docs/alarms.md) --------------------------
const PATTERNS = {
  high: {hz: 523, pulse: 150, starts: [0, 250, 500, 1000, 1250, 2400, 2650, 2900, 3400, 3650], period: 8800},
  medium: {hz: 440, pulse: 200, starts: [0, 400, 800], period: 11000},
  low: {hz: 392, pulse: 200, starts: [0, 400], period: 20600},
};
const Sound = {
  ctx: null, on: false, playing: null, timer: null, nodes: [],
  toggle() {
    this.on = !this.on;
    if (this.on && !this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (this.ctx && this.ctx.state === "suspended") this.ctx.resume();
    const b = $("#sound-toggle");
    b.textContent = this.on ? "Sound: on (click to mute)" : "Sound: muted (click to hear the alarms)";
    this.follow(this.want);
  },
  want: null,
  // Play `priority`'s pattern from its first pulse, or nothing (null); a change restarts it.
  follow(priority) {
    this.want = priority;
    const next = this.on ? priority : null;
    if (next === this.playing) return;
    this.stop();
    this.playing = next;
    if (next) this.burst();
  },
  burst() {
    const p = PATTERNS[this.playing];
    if (!p || !this.ctx) return;
    const t0 = this.ctx.currentTime + 0.05;
    for (const s of p.starts) {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.type = "square"; osc.frequency.value = p.hz; gain.gain.value = 0.08;
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t0 + s / 1000); osc.stop(t0 + (s + p.pulse) / 1000);
      this.nodes.push(osc);
    }
    this.timer = setTimeout(() => { this.nodes = []; this.burst(); }, p.period);
  },
  stop() {
    clearTimeout(this.timer);
    for (const n of this.nodes) { try { n.stop(); } catch (e) { /* already done */ } }
    this.nodes = [];
    this.playing = null;
  },
};

// The lights and the sound follow the pump: its most urgent alarm not acknowledged; a timed
// audio pause silences the sound, the lights go on (as the pump's annunciator does).
function annunciate(d) {
  const w = d.words || {};
  const p = w.sounding || null;
  const red = $("#light-red"), yellow = $("#light-yellow"), sum = $("#alarm-summary");
  red.className = "light red" + (p === "high" ? " on flash-high" : "");
  yellow.className = "light yellow" + (p === "medium" ? " on flash-medium" : p === "low" ? " on" : "");
  const alarms = w.alarms || [];
  const paused = w.audio_paused_ms > 0;
  sum.className = p || "";
  sum.textContent = alarms.length
    ? alarms.map((a) => a.code + " (" + a.priority + ", " + a.state + ")").join(", ") +
      (paused ? " · audio paused " + Math.ceil(w.audio_paused_ms / 1000) + " s" : "")
    : "No alarms";
  red.dataset.state = p === "high" ? "flashing" : "off";
  yellow.dataset.state = p === "medium" ? "flashing" : p === "low" ? "steady" : "off";
  Sound.follow(paused ? null : p);
}

async function poll() {
  try {
    const d = await apiGet("/api/status");
    $("#busy").textContent = d.busy ? "the pump is busy (a long request runs)…" : "";
    if (d.status) {
      PUMP.status = d;
      annunciate(d);
      for (const f of PUMP.listeners) f(d);
    }
  } catch (e) {
    $("#busy").textContent = "no status: " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  onClick("#sound-toggle", async () => Sound.toggle());
  const page = document.body.dataset.page;
  if (window.PAGES && window.PAGES[page]) window.PAGES[page]();
  poll();
  setInterval(poll, 1000);
});
