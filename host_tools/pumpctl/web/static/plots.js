// pumpctl ui: plots drawn in the page as SVG from the app's JSON (no libraries).
// Research and education prototype: never for human use.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// A frame: axes, y ticks and a title; returns {g, x(v), y(v)} for the data.
function frame(svg, opts) {
  const W = 720, H = opts.height || 260, L = 56, R = 12, T = 24, B = 34;
  svg.innerHTML = "";
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "plot");
  const x = (v) => L + (W - L - R) * (v - opts.x0) / ((opts.x1 - opts.x0) || 1);
  const ymax = opts.ymax > 0 ? opts.ymax : 1;
  const y = (v) => H - B - (H - T - B) * v / ymax;
  svg.append(svgEl("text", {x: L, y: 16, "font-size": 13, "font-weight": 600, fill: "#1d232a"},
    (opts.title || "") + (opts.yLabel ? " (" + opts.yLabel + ")" : "")));
  svg.append(svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#888"}));
  svg.append(svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}));
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    svg.append(svgEl("line", {x1: L, y1: y(v), x2: W - R, y2: y(v), stroke: "#e3e7eb"}));
    svg.append(svgEl("text", {x: L - 6, y: y(v) + 4, "font-size": 11, "text-anchor": "end", fill: "#555"},
      v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)));
  }
  for (const [v, label] of opts.xTicks || []) {
    svg.append(svgEl("text", {x: x(v), y: H - B + 16, "font-size": 11, "text-anchor": "middle", fill: "#555"}, label));
    svg.append(svgEl("line", {x1: x(v), y1: H - B, x2: x(v), y2: H - B + 4, stroke: "#888"}));
  }
  if (opts.xLabel) svg.append(svgEl("text", {x: W - R, y: H - 4, "font-size": 11, "text-anchor": "end", fill: "#555"}, opts.xLabel));
  const g = svgEl("g", {});
  svg.append(g);
  return {g, x, y, W, H, L, R, T, B};
}

function legend(svg, items) {
  let x = 380;
  for (const [color, label] of items) {
    svg.append(svgEl("rect", {x, y: 6, width: 12, height: 12, fill: color}));
    svg.append(svgEl("text", {x: x + 16, y: 16, "font-size": 12, fill: "#1d232a"}, label));
    x += 24 + label.length * 6.5;
  }
}

function hhmm(min) { return String(Math.floor(min / 60)).padStart(2, "0") + ":" + String(min % 60).padStart(2, "0"); }

// A 24-hour basal profile: steps [{start "HH:MM", rate µg/day}], a floor, periodic boluses.
function drawProfile(svg, steps, opts) {
  opts = opts || {};
  const mins = steps.map((s) => { const [h, m] = String(s.start).split(":").map(Number); return h * 60 + m; });
  const rates = steps.map((s) => Math.max(Number(s.rate_ug_per_day) || 0, Number(opts.floor) || 0));
  const top = Math.max(1, ...rates) * 1.15 / 24;
  const f = frame(svg, {x0: 0, x1: 1440, ymax: top, height: opts.height || 220, title: opts.title || "24-hour basal profile",
    yLabel: "µg/h", xLabel: "time of day (pump clock)", xTicks: [0, 240, 480, 720, 960, 1200, 1440].map((m) => [m, hhmm(m)])});
  let d = "";
  for (let i = 0; i < steps.length; i++) {
    const a = mins[i], b = i + 1 < steps.length ? mins[i + 1] : 1440;
    if (!(a >= 0 && b > a)) continue;
    const yy = f.y(rates[i] / 24);
    d += (d ? " L" : "M") + f.x(a) + " " + yy + " L" + f.x(b) + " " + yy;
    f.g.append(svgEl("rect", {x: f.x(a), y: yy, width: f.x(b) - f.x(a), height: f.H - f.B - yy, fill: opts.color || "#3f7cbf", "fill-opacity": 0.25}));
    f.g.append(svgEl("text", {x: (f.x(a) + f.x(b)) / 2, y: yy - 4, "font-size": 11, "text-anchor": "middle", fill: "#17324d"},
      (rates[i] / 24).toFixed(2)));
  }
  if (d) f.g.append(svgEl("path", {d, fill: "none", stroke: opts.color || "#3f7cbf", "stroke-width": 2.5}));
  for (const b of opts.periodic || []) {
    const [h, m] = String(b.time).split(":").map(Number);
    const t = h * 60 + m;
    if (!(t >= 0)) continue;
    f.g.append(svgEl("line", {x1: f.x(t), y1: f.T, x2: f.x(t), y2: f.H - f.B, stroke: "#b3261e", "stroke-dasharray": "4 3"}));
    f.g.append(svgEl("text", {x: f.x(t) + 3, y: f.T + 12, "font-size": 11, fill: "#b3261e"}, `${b.dose_ug} µg bolus`));
  }
  return f;
}

// Programmed against delivered per hour (api.Pump.history rows), µg.
function drawHistory(svg, rows) {
  if (!rows.length) {
    frame(svg, {x0: 0, x1: 1, ymax: 1, title: "No hourly history yet (the clock must be set and an hour must close)"});
    return;
  }
  const h0 = rows[0].hour, h1 = rows[rows.length - 1].hour + 1;
  const top = Math.max(0.001, ...rows.map((r) => Math.max(r.programmed_ug, r.delivered_ug))) * 1.15;
  const ticks = [];
  const every = Math.max(1, Math.ceil((h1 - h0) / 12));
  for (let h = h0; h <= h1; h += every) {
    const d = new Date(Date.UTC(2000, 0, 1) + h * 3600000);
    ticks.push([h, (h - h0) % 24 === 0 || every >= 24 ? d.toISOString().slice(5, 13).replace("T", " ") + "h" : d.toISOString().slice(11, 13) + "h"]);
  }
  const f = frame(svg, {x0: h0, x1: h1, ymax: top, title: "Programmed and delivered dose per hour", yLabel: "µg per hour",
    xLabel: "hour (pump clock, UTC)", xTicks: ticks});
  const w = f.x(h0 + 1) - f.x(h0);
  for (const r of rows) {
    const y = f.y(r.delivered_ug);
    f.g.append(svgEl("rect", {x: f.x(r.hour) + w * 0.1, y, width: w * 0.8, height: f.H - f.B - y, fill: "#3f7cbf", class: "bar-delivered"}));
  }
  let d = "";
  for (const r of rows) d += (d ? " L" : "M") + f.x(r.hour) + " " + f.y(r.programmed_ug) + " L" + f.x(r.hour + 1) + " " + f.y(r.programmed_ug);
  f.g.append(svgEl("path", {d, fill: "none", stroke: "#b3261e", "stroke-width": 2}));
  legend(svg, [["#3f7cbf", "delivered"], ["#b3261e", "programmed"]]);
}

// Patient bolus usage per day: delivered and refused, stacked.
function drawUsage(svg, days) {
  const n = Math.max(1, days.length);
  const top = Math.max(1, ...days.map((d) => d.attempts)) * 1.2;
  const f = frame(svg, {x0: 0, x1: n, ymax: top, height: 200, title: "Patient bolus requests per day", yLabel: "requests",
    xTicks: days.map((d, i) => [i + 0.5, d.date ? `${d.date[1]}-${d.date[2]}` : "no clock"])});
  const w = f.x(1) - f.x(0);
  days.forEach((d, i) => {
    let base = 0;
    for (const [k, color] of [["delivered", "#1b6e2f"], ["lockout", "#ffb000"], ["limit", "#b3261e"], ["rate_limited", "#6b4fa0"], ["other", "#888"]]) {
      const v = d[k] || 0;
      if (!v) continue;
      const y0 = f.y(base), y1 = f.y(base + v);
      f.g.append(svgEl("rect", {x: f.x(i) + w * 0.15, y: y1, width: w * 0.7, height: y0 - y1, fill: color}));
      base += v;
    }
  });
  legend(svg, [["#1b6e2f", "delivered"], ["#ffb000", "lockout"], ["#b3261e", "limit"], ["#6b4fa0", "too many"]]);
}

// A running trace (the Pico's STEP edges per second).
function drawTrace(svg, points, title, unit) {
  const n = Math.max(2, points.length);
  const top = Math.max(1, ...points) * 1.2;
  const f = frame(svg, {x0: 0, x1: n - 1, ymax: top, height: 180, title, yLabel: unit, xLabel: "last " + n + " s"});
  let d = "";
  points.forEach((v, i) => { d += (d ? " L" : "M") + f.x(i) + " " + f.y(v); });
  if (d) f.g.append(svgEl("path", {d, fill: "none", stroke: "#3f7cbf", "stroke-width": 2}));
}
