// pumpctl ui: the program editor. Every mode of docs/programs.md (continuous, flex with its
// drawn 24-hour profile, periodic boluses, the patient bolus and its limits, overrides); the
// pump checks the program (program_check), the page shows old and new side by side, and only
// an explicit confirm writes it. Research and education prototype: never for human use.
"use strict";

window.PAGES = window.PAGES || {};

const Editor = {
  drugs: [],
  checked: null,   // {program, digest} the pump last checked, shown in the comparison

  row(kind, values) {
    const tr = el("tr", {class: kind + "-row"});
    const fields = kind === "step" ? [["start", "HH:MM", "text"], ["rate_ug_per_day", "µg/day", "number"]]
      : [["time", "HH:MM", "text"], ["dose_ug", "µg", "number"], ["duration_min", "min", "number"]];
    for (const [name, unit, type] of fields) {
      const i = el("input", {type, name, placeholder: unit, "aria-label": name});
      i.value = values && values[name] !== undefined ? values[name] : "";
      i.addEventListener("input", () => Editor.changed());
      tr.append(el("td", {}, i, " ", el("span", {class: "muted", text: unit})));
    }
    const rm = el("button", {class: "secondary", type: "button", text: "remove"});
    rm.addEventListener("click", () => { tr.remove(); Editor.changed(); });
    tr.append(el("td", {}, rm));
    $(kind === "step" ? "#steps tbody" : "#periodic tbody").append(tr);
  },

  rows(kind) {
    return $$(`#${kind === "step" ? "steps" : "periodic"} tbody tr`).map((tr) => {
      const o = {};
      for (const i of $$("input", tr)) o[i.name] = i.type === "number" ? num(i.value) : i.value.trim();
      return o;
    });
  },

  setDrugs(list) {
    this.drugs = list;
    const sel = $("#drug");
    sel.innerHTML = "";
    for (const d of list) sel.append(el("option", {value: d.name, text: d.name}));
    this.setConcentrations();
    const box = $("#overrides");
    box.innerHTML = "";
    const names = new Set();
    for (const d of list) for (const k of ["daily", "rate", "bolus", "pbolus", "pcount"]) if (d[k]) names.add(d[k].override);
    for (const n of names) {
      const c = el("input", {type: "checkbox", name: "override", value: n, id: "ov-" + n});
      c.addEventListener("change", () => Editor.changed());
      box.append(el("label", {}, c, " " + n));
    }
  },

  setConcentrations() {
    const d = this.drugs.find((x) => x.name === $("#drug").value);
    const sel = $("#concentration");
    const keep = sel.value;
    sel.innerHTML = "";
    for (const c of (d && d.concentrations_ug_per_ml) || []) sel.append(el("option", {value: c, text: c + " µg/mL"}));
    if (keep) sel.value = keep;
  },

  load(p) {
    $$("#steps tbody tr, #periodic tbody tr").forEach((tr) => tr.remove());
    if (!p) { $("#mode").value = "continuous"; this.row("step", {start: "00:00", rate_ug_per_day: ""}); this.changed(); return; }
    $("#drug").value = p.drug; this.setConcentrations(); $("#concentration").value = p.concentration_ug_per_ml;
    $("#mode").value = p.mode;
    $("#rate").value = p.rate_ug_per_day || "";
    $("#min-rate").value = p.min_rate_ug_per_day || "";
    for (const s of p.steps || []) this.row("step", s);
    if (!(p.steps || []).length) this.row("step", {start: "00:00", rate_ug_per_day: p.rate_ug_per_day || ""});
    for (const b of p.periodic_boluses || []) this.row("periodic", b);
    const pb = p.patient_bolus;
    $("#pb-on").checked = !!pb;
    for (const k of ["dose_ug", "duration_min", "max_per_24h", "lockout_min"]) $("#pb-" + k).value = pb ? pb[k] : "";
    for (const c of $$('input[name="override"]')) c.checked = (p.overrides || []).includes(c.value);
    this.changed();
  },

  // The program as the editor holds it, in the pump's JSON (docs/programs.md).
  program() {
    const mode = $("#mode").value;
    const p = {drug: $("#drug").value, concentration_ug_per_ml: num($("#concentration").value), mode};
    if (mode === "continuous") p.rate_ug_per_day = num($("#rate").value);
    if (mode === "flex") p.steps = this.rows("step");
    if (mode !== "stopped") {
      if ($("#min-rate").value.trim()) p.min_rate_ug_per_day = num($("#min-rate").value);
      const per = this.rows("periodic");
      if (per.length) p.periodic_boluses = per;
      if ($("#pb-on").checked) {
        p.patient_bolus = {};
        for (const k of ["dose_ug", "duration_min", "max_per_24h", "lockout_min"]) p.patient_bolus[k] = num($("#pb-" + k).value);
      }
    }
    p.overrides = $$('input[name="override"]:checked').map((c) => c.value);
    return p;
  },

  changed() {
    const mode = $("#mode").value;
    $("#continuous-fields").hidden = mode !== "continuous";
    $("#flex-fields").hidden = mode !== "flex";
    $("#extras").hidden = mode === "stopped";
    $("#pb-fields").hidden = !$("#pb-on").checked;
    const p = this.program();
    const steps = mode === "flex" ? p.steps : mode === "continuous" ? [{start: "00:00", rate_ug_per_day: p.rate_ug_per_day}] : [{start: "00:00", rate_ug_per_day: 0}];
    drawProfile($("#profile-new"), steps, {floor: p.min_rate_ug_per_day, periodic: p.periodic_boluses, title: "The new program's 24-hour basal profile (as edited)"});
    $("#program-json").textContent = JSON.stringify(p, null, 1);
    // Any edit after a check needs a new check: the comparison shown must be of this program.
    if (this.checked && JSON.stringify(this.checked.program) !== JSON.stringify(p)) this.clearCheck();
  },

  clearCheck() {
    this.checked = null;
    $("#comparison").hidden = true;
    $("#write").disabled = true;
  },

  async check() {
    const p = this.program();
    const out = $("#check-result");
    this.clearCheck();
    try {
      const d = await apiPost("/api/program/check", {program: p});
      this.checked = {program: p, digest: d.digest};
      show(out, "The pump accepts this program. Read the comparison, then confirm to write it.", "okmsg");
      const tb = $("#compare tbody");
      tb.innerHTML = "";
      for (const [label, a, b] of d.rows) {
        tb.append(el("tr", {}, el("th", {text: label}), el("td", {text: a}), el("td", {class: a !== b ? "changed" : "", text: b})));
      }
      const stepsOf = (q) => !q ? [{start: "00:00", rate_ug_per_day: 0}] : q.mode === "flex" ? q.steps
        : [{start: "00:00", rate_ug_per_day: q.mode === "continuous" ? q.rate_ug_per_day : 0}];
      drawProfile($("#profile-old"), stepsOf(d.old), {floor: d.old && d.old.min_rate_ug_per_day, periodic: d.old && d.old.periodic_boluses,
        title: "Current program (on the pump)", color: "#888", height: 180});
      drawProfile($("#profile-checked"), stepsOf(d.new), {floor: d.new.min_rate_ug_per_day, periodic: d.new.periodic_boluses,
        title: "New program (as the pump read it)", height: 180});
      $("#comparison").hidden = false;
      $("#confirm").checked = false;
      $("#write").disabled = true;
    } catch (e) {
      this.refusal(out, e);
    }
  },

  // A refusal: the pump's sentence, and for a soft limit a button to confirm the override it names.
  refusal(out, e) {
    showError(out, e);
    for (const name of e.overrides || []) {
      const b = el("button", {type: "button", class: "secondary", id: "add-override-" + name,
        text: `Confirm the override "${name}" and check again`});
      b.addEventListener("click", () => { const c = $("#ov-" + name); if (c) c.checked = true; Editor.changed(); Editor.check(); });
      out.append(el("div", {}, b));
    }
  },

  async write() {
    const out = $("#write-result");
    if (!this.checked || !$("#confirm").checked) return;
    try {
      const d = await apiPost("/api/program/set", {program: this.checked.program, digest: this.checked.digest, confirm: true});
      show(out, "Written." + (d.overrides_used && d.overrides_used.length ? " Overrides used: " + d.overrides_used.join(", ") + "." : "")
        + " The pump now runs the new program.", "okmsg");
      this.clearCheck();
      await this.current();
    } catch (e) {
      this.refusal(out, e);
    }
  },

  async current() {
    const d = await apiGet("/api/program");
    const p = d.program.program;
    $("#current-json").textContent = p ? JSON.stringify(p, null, 1) : "no program";
    $("#current-state").textContent = d.program.state;
    return d;
  },
};

function num(v) {
  const t = String(v).trim();
  if (t === "") return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;  // the pump judges what is not a whole number, with its sentence
}

window.PAGES.program = async function () {
  const d = await Editor.current();
  Editor.setDrugs(d.drugs.drugs);
  Editor.load(d.program.program);
  for (const id of ["#mode", "#drug", "#concentration", "#rate", "#min-rate", "#pb-on", "#pb-dose_ug", "#pb-duration_min", "#pb-max_per_24h", "#pb-lockout_min"]) {
    $(id).addEventListener("input", () => { if (id === "#drug") Editor.setConcentrations(); Editor.changed(); });
    $(id).addEventListener("change", () => Editor.changed());
  }
  onClick("#add-step", async () => { Editor.row("step", {}); Editor.changed(); });
  onClick("#add-periodic", async () => { Editor.row("periodic", {}); Editor.changed(); });
  onClick("#reload", async () => { const c = await Editor.current(); Editor.load(c.program.program); });
  onClick("#check", () => Editor.check());
  $("#confirm").addEventListener("change", () => { $("#write").disabled = !($("#confirm").checked && Editor.checked); });
  onClick("#write", () => Editor.write());
  onClick("#cancel", async () => { Editor.clearCheck(); show("#check-result", "Nothing was written.", "muted"); });
};
