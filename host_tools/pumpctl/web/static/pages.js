// pumpctl ui: the pages other than the program editor. Each reads its JSON endpoint, fills
// the server-rendered page and sends its actions (app.js apiPost). Research and education
// prototype: never for human use.
"use strict";

window.PAGES = window.PAGES || {};

// Send a form's fields to `path` and show the answer (or the pump's refusal) in `out`.
function action(button, path, out, body, done) {
  onClick(button, async () => {
    try {
      const d = await apiPost(path, typeof body === "function" ? body() : body);
      show(out, done ? done(d) : "Done.", "okmsg");
      poll();
    } catch (e) {
      showError(out, e);
      for (const name of e.overrides || []) $(out).append(el("div", {class: "muted", text: `Tick the override "${name}" to confirm this soft limit, then send again.`}));
    }
  });
}

// ---- status ------------------------------------------------------------------------------------
window.PAGES.status = function () {
  PUMP.listeners.push((d) => {
    const w = d.words;
    fill(document, w);
    $("#w-state").className = w.running ? "state-running" : "state-stopped";
    const tb = $("#alarms tbody");
    tb.innerHTML = "";
    for (const a of w.alarms) {
      const b = el("button", {type: "button", class: "secondary", text: "Acknowledge", "data-code": a.code});
      b.addEventListener("click", async () => {
        try { await apiPost("/api/alarms/ack", {code: a.code}); toast(a.code + " acknowledged"); poll(); } catch (e) { toast(e.message, true); }
      });
      tb.append(el("tr", {class: "alarm-" + a.priority}, el("td", {text: a.code}), el("td", {text: a.priority}),
        el("td", {text: a.state}), el("td", {text: a.since}), el("td", {}, a.state === "acknowledged" ? "" : b)));
    }
    $("#no-alarms").hidden = w.alarms.length > 0;
    const bench = d.bench;
    if (bench && $("#bench-leds")) {
      $("#bench-leds").textContent = `red ${bench.leds && bench.leds.red ? "on" : "off"}, yellow ${bench.leds && bench.leds.yellow ? "on" : "off"}; buzzer ${bench.buzzer_hz ? bench.buzzer_hz + " Hz" : "silent"} (at the bench's last moment of virtual time)`;
    }
  });
  action("#ack-all", "/api/alarms/ack", "#alarm-result", {code: "all"}, (d) => "Acknowledged: " + ((d.acked || d.acknowledged || []).join(", ") || "nothing to acknowledge") + ".");
  action("#pause", "/api/alarms/pause", "#alarm-result", () => ({duration: $("#pause-for").value}), () => "Alarm audio paused for " + $("#pause-for").value + "; the lights stay on.");
  action("#stop", "/api/stop", "#therapy-result", {}, () => "Delivery stopped.");
  action("#resume", "/api/resume", "#therapy-result", {}, () => "The program resumed (no catch-up of what was missed).");
};

// ---- boluses and refill --------------------------------------------------------------------------
window.PAGES.therapy = async function () {
  const overrides = () => $$('#bolus-form input[name="override"]:checked').map((c) => c.value);
  action("#bolus", "/api/bolus", "#bolus-result", () => ({dose_ug: $("#bolus-dose").value, duration_min: $("#bolus-min").value, overrides: overrides()}),
    (d) => `Clinician bolus started: ${d.dose_ug ?? $("#bolus-dose").value} µg over ${$("#bolus-min").value} min; the program resumes after it.`);
  action("#prime", "/api/prime", "#prime-result", () => formData($("#prime-form")),
    (d) => `Priming bolus started: ${d.steps ?? "?"} steps` + (d.volume_ul !== undefined ? ` (${d.volume_ul} µL)` : "") + " (volume, not dose).");
  action("#bridge", "/api/bridge", "#bridge-result", {}, (d) => JSON.stringify(d));
  const info = await apiGet("/api/refill");
  $("#refill-expected").textContent = `${info.expected_ul} µL (${info.drug || "no drug"} at ${info.concentration_ug_per_ml} µg/mL; a ${info.model_ml} mL pump)`;
  if (info.bench_true_ul !== null && info.bench_true_ul !== undefined) {
    $("#refill-bench").textContent = `${info.bench_true_ul} µL of water (what a syringe would withdraw)`;
    $("#withdrawn").value = info.bench_true_ul;
  }
  $("#volume").value = info.model_ml * 1000;
  const conc = $("#refill-conc");
  const drug = (info.drugs.drugs || []).find((x) => x.name === info.drug);
  for (const c of (drug && drug.concentrations_ug_per_ml) || []) conc.append(el("option", {value: c, text: c + " µg/mL" + (c === info.concentration_ug_per_ml ? " (unchanged)" : "")}));
  onClick("#refill", async () => {
    const out = $("#refill-result");
    const body = {withdrawn_ul: $("#withdrawn").value, volume_ul: $("#volume").value, bridge: $("#refill-bridge").checked};
    if (conc.value) body.concentration_ug_per_ml = conc.value;
    try {
      const d = await apiPost("/api/refill", body);
      const lines = [`Withdrew ${d.withdrawn_ul} µL; the pump expected ${d.expected_ul} µL (difference ${d.mismatch_ul >= 0 ? "+" : ""}${d.mismatch_ul} µL).`];
      if (d.warning) lines.push("WARNING: " + d.warning_text + ".");
      lines.push(`Reservoir now ${d.volume_ul} µL.`);
      if (d.forecast) lines.push(`Low reservoir in ${d.forecast.days_to_low} days; empty in ${d.forecast.days_to_empty} days (assuming every allowed patient bolus).`);
      if (d.bridge_steps) lines.push(`Bridge bolus: ${d.bridge_steps} steps of the old drug pushed at the prescribed dose.`);
      if (d.bench_fill) lines.push(`The bench's reservoir was filled to match: ${d.bench_fill.withdrawn_ul} µL of water really came out, ${d.bench_fill.volume_ul} µL went in.`);
      show(out, lines.join("\n"), d.warning ? "warning" : "okmsg");
      poll();
    } catch (e) { showError(out, e); }
  });
};

// ---- calibration, settings, clock ------------------------------------------------------------------
window.PAGES.setup = async function () {
  const d = await apiGet("/api/settings");
  for (const [k, v] of Object.entries(d.settings)) { const i = $(`#settings-form [name="${k}"]`); if (i) i.value = v; }
  const tb = $("#drugs tbody");
  for (const x of d.drugs.drugs) {
    tb.append(el("tr", {}, el("td", {text: x.name}), el("td", {text: x.concentrations_ug_per_ml.join(", ")}),
      el("td", {text: `${x.daily.soft} / ${x.daily.hard}`}), el("td", {text: `${x.rate.soft} / ${x.rate.hard}`}),
      el("td", {text: `${x.bolus.soft} / ${x.bolus.hard}`}), el("td", {text: `${x.pbolus.soft} / ${x.pbolus.hard}`}),
      el("td", {text: `${x.pcount.soft} / ${x.pcount.hard}`}), el("td", {text: x.max24_ug})));
  }
  action("#settings-save", "/api/settings", "#settings-result", () => formData($("#settings-form")),
    (s) => "Saved: " + Object.entries(s).map(([k, v]) => `${k} ${v}`).join(", "));
  action("#calibrate", "/api/calibrate", "#calibrate-result", () => formData($("#calibrate-form")),
    (r) => `Stored ${r.pl_per_step} pL per step (was ${r.was_pl_per_step}, ${r.change_percent >= 0 ? "+" : ""}${r.change_percent.toFixed(2)} %): ` +
      `${r.mass_mg.toFixed(1)} mg weighed for ${r.steps} steps.`);
  action("#clock-now", "/api/clock", "#clock-result", {}, () => "The pump's clock is set to this computer's time (UTC).");
  action("#clock-at", "/api/clock", "#clock-result", () => ({at: $("#clock-when").value}), () => "The pump's clock is set to " + $("#clock-when").value + " UTC.");
  action("#alarm-test", "/api/alarms/test", "#clock-result", {}, () => "Alarm test: each pattern plays once on the pump's buzzer and lights.");
  const id = await apiGet("/api/identify");
  $("#identify").textContent = Object.entries(id).filter(([k]) => typeof id[k] !== "object").map(([k, v]) => `${k}: ${v}`).join("\n");
};

// ---- history, log, usage ------------------------------------------------------------------------------
window.PAGES.history = function () {
  async function history() {
    try {
      const d = await apiGet("/api/history?days=" + encodeURIComponent($("#days").value));
      drawHistory($("#history-plot"), d.hours);
      const tb = $("#history-table tbody");
      tb.innerHTML = "";
      for (const r of d.hours.slice(-48)) {
        const t = new Date(Date.UTC(2000, 0, 1) + r.hour * 3600000).toISOString().slice(0, 13).replace("T", " ") + ":00";
        tb.append(el("tr", {}, el("td", {text: t}), el("td", {text: r.programmed_ug.toFixed(3)}), el("td", {text: r.delivered_ug.toFixed(3)}), el("td", {text: r.delivered_ul.toFixed(3)})));
      }
      $("#history-count").textContent = d.hours.length + " hours";
    } catch (e) { showError("#history-count", e); }
  }
  let before = "";
  async function log() {
    try {
      const d = await apiGet(`/api/log?ring=${$("#ring").value}&size=20` + (before ? "&before=" + before : ""));
      const tb = $("#log tbody");
      tb.innerHTML = "";
      for (const r of d.records.slice().reverse()) tb.append(el("tr", {}, el("td", {text: r.seq}), el("td", {text: r.when}), el("td", {text: r.type}), el("td", {text: r.what})));
      $("#log-span").textContent = d.records.length ? `records ${d.records[0].seq} to ${d.records[d.records.length - 1].seq} of ${d.first_seq} to ${d.last_seq}` : "no records";
      $("#older").disabled = d.older === null; $("#older").dataset.before = d.records.length ? d.records[0].seq : "";
      $("#newer").disabled = d.newer === null || !before; $("#newer").dataset.before = d.newer || "";
    } catch (e) { showError("#log-span", e); }
  }
  async function usage() {
    try {
      const d = await apiGet("/api/usage?days=" + encodeURIComponent($("#usage-days").value));
      drawUsage($("#usage-plot"), d.days);
      const tb = $("#usage tbody");
      tb.innerHTML = "";
      for (const r of d.days) tb.append(el("tr", {}, el("td", {text: r.date ? r.date.map((n) => String(n).padStart(2, "0")).join("-") : "clock not set"}), ...["attempts", "delivered", "lockout", "limit", "rate_limited", "other"].map((k) => el("td", {text: r[k]}))));
      $("#usage-notes").textContent = d.notes.join(" ");
    } catch (e) { showError("#usage-notes", e); }
  }
  $("#days").addEventListener("change", history);
  $("#ring").addEventListener("change", () => { before = ""; log(); });
  $("#usage-days").addEventListener("change", usage);
  onClick("#older", async () => { before = $("#older").dataset.before; await log(); });
  onClick("#newer", async () => { before = $("#newer").dataset.before; await log(); });
  onClick("#refresh", async () => { await history(); before = ""; await log(); await usage(); });
  history(); log(); usage();
};

// ---- the virtual bench ---------------------------------------------------------------------------------
window.PAGES.bench = function () {
  async function truth() {
    try {
      const d = await apiGet("/api/bench/show");
      const tb = $("#truth tbody");
      tb.innerHTML = "";
      const rows = [["outlet (water out)", d.outlet_ul + " µL"], ["scale", (d.scale_ug / 1000).toFixed(1) + " mg"],
        ["reservoir (true water)", d.reservoir_true_ul + " µL"], ["outlet blocked", d.outlet_blocked ? "yes" : "no"],
        ["pressure", d.pressure_kpa + " kPa"], ["head steps", d.head_steps], ["motor", d.motor && d.motor.enabled ? "enabled" : "off"],
        ["battery", d.battery_mv + " mV"], ["LEDs", `red ${d.leds.red ? "on" : "off"}, yellow ${d.leds.yellow ? "on" : "off"}`],
        ["buzzer", d.buzzer_hz ? d.buzzer_hz + " Hz" : "silent"], ["virtual time", (d.clock.virtual_ms / 3600000).toFixed(3) + " h (" + d.clock.mode + ")"]];
      for (const [k, v] of rows) tb.append(el("tr", {}, el("th", {text: k}), el("td", {text: v})));
    } catch (e) { showError("#truth-error", e); }
  }
  const fmt = (ms) => ms >= 86400000 ? (ms / 86400000).toFixed(2) + " days" : ms >= 3600000 ? (ms / 3600000).toFixed(2) + " h" : (ms / 60000).toFixed(1) + " min";
  action("#advance", "/api/bench/advance", "#advance-result", () => ({duration: $("#advance-for").value}), (d) => "Advanced " + fmt(d.advanced_ms) + ".");
  for (const b of $$("button[data-advance]")) action(b, "/api/bench/advance", "#advance-result", {duration: b.dataset.advance}, (d) => "Advanced " + fmt(d.advanced_ms) + ".");
  action("#advance-until", "/api/bench/advance", "#advance-result", () => ({until: $("#until").value === "date" ? $("#until-date").value : $("#until").value, cap: $("#until-cap").value}),
    (d) => d.hit ? `Stopped at ${d.hit.event}: ${d.hit.detail} after ${fmt(d.advanced_ms)}.` : `Advanced ${fmt(d.advanced_ms)} (${d.stopped_by === "cap" ? "the cap came first" : "the time was reached"}).`);
  action("#fault-on", "/api/bench/fault", "#fault-result", () => ({fault: $("#fault").value, mv: $("#fault-mv").value}), () => "Fault injected: " + $("#fault").value + ". Advance time to see the pump notice.");
  action("#fault-clear", "/api/bench/fault", "#fault-result", () => ({fault: $("#fault").value, clear: true}), () => "Fault cleared: " + $("#fault").value + ".");
  action("#press", "/api/bench/press", "#press-result", {}, (d) => `Button pressed (${d.presses} since the bench started)` + (d.record ? ": " + (d.record.data.outcome || "") + (d.record.data.why ? ", " + d.record.data.why : "") : "."));
  action("#fill", "/api/bench/fill", "#fill-result", () => ({volume: $("#fill-volume").value}), (d) => `${d.withdrawn_ul} µL came out, ${d.volume_ul} µL went in. Now tell the pump: the refill form on "Boluses & refill".`);
  action("#power-cycle", "/api/bench/power-cycle", "#power-result", () => ({down: $("#power-down").value}), (d) => "Power cut and restored; the firmware booted from its flash (port " + d.port + ").");
  PUMP.listeners.push(truth);
  truth();
};

// ---- the emulated Pico's pins -----------------------------------------------------------------------------
window.PAGES.pico = function () {
  const trace = [];
  let last = null;
  PUMP.listeners.push(async () => {
    try {
      const d = await apiGet("/api/pico/pins");
      const tb = $("#pins tbody");
      tb.innerHTML = "";
      for (const name of ["step", "dir", "en", "led_red", "led_yellow", "button"]) {
        const p = d[name];
        tb.append(el("tr", {}, el("th", {text: name.toUpperCase()}), el("td", {text: "GP" + p.gpio}),
          el("td", {}, el("span", {class: "pin" + (p.level ? " high" : ""), text: p.level ? "1" : "0"})),
          el("td", {text: p.output ? "output" : "input"}), el("td", {text: p.rising}), el("td", {text: p.falling})));
      }
      $("#buzzer").textContent = d.buzzer.sounding ? `sounding ${d.buzzer.freq_hz} Hz (duty ${d.buzzer.duty})` : "silent";
      $("#pico-time").textContent = `chip time ${(d.t_ns / 1e9).toFixed(1)} s, boots ${d.boots}, last reset ${d.last_reset}`;
      if (last !== null) trace.push(Math.max(0, d.step.rising - last));
      last = d.step.rising;
      if (trace.length > 60) trace.shift();
      drawTrace($("#step-plot"), trace, "STEP rising edges per poll (about a second)", "steps");
    } catch (e) { showError("#pico-error", e); }
  });
  action("#pico-press", "/api/pico/button", "#pico-result", {}, () => "The bolus button was pressed (200 ms).");
  action("#pico-battery", "/api/pico/battery", "#pico-result", () => ({mv: $("#pico-mv").value}), (d) => `ADC0 now reads ${d.adc_raw} (${d.mv} mV through the divider).`);
};

// ---- the patient's view -----------------------------------------------------------------------------------
window.PAGES.patient = async function () {
  function render(v) {
    const pb = v.patient_bolus;
    $("#pb-programmed").textContent = pb ? `${pb.dose_ug} µg over ${pb.duration_min} min; at most ${pb.max_per_24h} in 24 h; ${pb.lockout_min} min between boluses`
      : "no patient bolus is programmed";
    $("#pb-running").textContent = v.bolus ? `a ${v.bolus.kind} bolus is running: ${v.bolus.left_ug} µg left` : "none running";
    const t = (v.today.days || []).slice(-1)[0];
    $("#pb-today").textContent = t ? `${t.attempts} asked today: ${t.delivered} given, ${t.lockout} too soon, ${t.limit} over the daily limit, ${t.rate_limited} too many at once` : "none today";
  }
  PUMP.listeners.push((d) => {
    const b = d.status.bolus;
    $("#pb-running").textContent = b ? `a ${b.kind} bolus is running: ${b.left_ug} µg left` : "none running";
  });
  try { render(await apiGet("/api/patient/status")); } catch (e) { showError("#pb-result", e); }
  onClick("#patient-bolus", async () => {
    try {
      const d = await apiPost("/api/patient/bolus", {});
      const r = d.reply;
      show("#pb-result", r.outcome === "delivered" ? "Your bolus is on its way." : "Not now: " + (r.why || r.outcome || JSON.stringify(r)), r.outcome === "delivered" ? "okmsg" : "warning");
      render(d.view);
    } catch (e) {
      // The pump's refusal (lockout, the daily count, the 24 h maximum): its own sentence.
      show("#pb-result", "Not now: " + e.message + (e.code ? "  [" + e.code + "]" : ""), "warning");
    }
  });
};
