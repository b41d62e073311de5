"""Words and tables for people: what pumpctl prints when --json is not given. Pure functions,
reply dicts in, text out; nothing here talks to a pump.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any, Optional, Sequence

from . import programs, wallclock
from .durations import format_ms

DISCLAIMER = "Research and education prototype: never for human use."


def table(rows: Sequence[Sequence[Any]], header: Optional[Sequence[str]] = None) -> str:
    allrows: list[Sequence[Any]] = ([header] if header else []) + list(rows)
    widths = [max(len(str(r[i])) for r in allrows) for i in range(len(allrows[0]))]
    lines = []
    for n, r in enumerate(allrows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if header and n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wall_text(wall: Optional[Sequence[int]]) -> str:
    if not wall:
        return "not set"
    return wallclock.from_pump(wall).strftime("%Y-%m-%d %H:%M:%S")


def nonneg_zero(x: float, places: int = 2) -> float:
    """x, with a value that rounds to zero made +0.0: never "-0.00 %"."""
    return 0.0 if round(x, places) == 0 else x


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---- the pump ----------------------------------------------------------------------------------
def identify_text(d: dict[str, Any]) -> str:
    lines = [f"{d['device']} {d['device_id']} on board {d['board']}, firmware {d['firmware_version']}, "
             f"protocol v{d['protocol']}.", d["banner"]]
    auth = d.get("auth")
    if isinstance(auth, dict):
        lines.append(auth_text(d["device_id"], auth))
    return "\n".join(lines)


def auth_text(device_id: str, auth: dict[str, Any]) -> str:
    """identify's `auth` in words: commands that change therapy are signed with this device's keys."""
    if not auth.get("provisioned"):
        return (f"Auth: this pump has no keys yet, so it accepts no command that changes therapy "
                f"(`pumpctl provision`); keys are per device, chosen by its id {device_id}.")
    counters = auth.get("counters") or {}
    seen = ", ".join(f"{role} {n}" for role, n in sorted(counters.items()))
    fails = (auth.get("failures") or {}).get("since_boot", 0)
    return (f"Auth: commands that change therapy must be signed with {device_id}'s own keys (a key per "
            f"device, found by this id); state {auth.get('auth_state', '?')}, last counter accepted per role: "
            f"{seen or 'none'}; {fails} refused since boot.")


def status_text(st: dict[str, Any]) -> str:
    lines = []
    if st["state"] == "running":
        lines.append(f"The pump is RUNNING {st.get('drug')} at {st['rate_ug_per_day']} µg/day "
                     f"({st['concentration_ug_per_ml']} µg/mL, {st.get('mode')}).")
    else:
        why = st.get("stop_reason") or "stopped"
        lines.append(f"The pump is STOPPED ({why}).")
    lines.append(f"Reservoir: {st['reservoir_ul']} µL left of {st['reservoir_model_ml']} mL. "
                 f"Delivered since programming began: {st['delivered_ul']} µL ({st['delivered_ug']} µg, "
                 f"{st['delivered_steps']} steps).")
    if st.get("bolus"):
        b = st["bolus"]
        lines.append(f"A {b['kind']} bolus is running: {b['left_ug']} µg left.")
    lines.extend(_dates_lines(st))
    lines.append(battery_text(st))
    alarms = st.get("alarms") or []
    if alarms:
        lines.append("Alarms:")
        lines.append(table([(a["code"], a["priority"], a.get("state", ""), since_text(a)) for a in alarms],
                           ("code", "priority", "state", "since (pump time)")))
    else:
        lines.append("No alarms.")
    lines.append(f"Clock: {wall_text(st.get('wall'))}; uptime {st['uptime_s']} s. "
                 f"Firmware {st['firmware_version']}; heap free {st.get('heap_free', '?')} bytes.")
    return "\n".join(lines)


_BATTERY = {"BATTERY_EOS": "end of service: replace it now (the pump stops)",
            "BATTERY_ERI": "elective replacement: plan a replacement"}


def battery_text(st: dict[str, Any]) -> str:
    """The battery as the pump sees it: its voltage when status gives one, and its alarm."""
    mv = st.get("battery_mv")
    volts = f"{mv / 1000:.2f} V, " if isinstance(mv, (int, float)) else ""
    codes = {a.get("code") for a in st.get("alarms") or []}
    for code, words in _BATTERY.items():
        if code in codes:
            return f"Battery: {volts}{words} ({code})."
    return f"Battery: {volts}good (no battery alarm)."


def _day_text(day: Optional[int]) -> str:
    return wall_text([day, 0])[:10] if isinstance(day, int) else "?"


def _dates_lines(st: dict[str, Any]) -> list[str]:
    """Low-reservoir and refill-by dates from status's forecast and refill_day (pump days)."""
    f = st.get("forecast")
    if not f:
        return []
    lines = [f"Low reservoir ({st.get('low_reservoir_ul', '?')} µL) on {_day_text(f.get('low_day'))}, in "
             f"{f.get('days_to_low')} days; empty on {_day_text(f.get('empty_day'))} "
             f"(assuming every allowed patient bolus, {f.get('daily_ug_worst')} µg/day)."]
    if isinstance(st.get("refill_day"), int):
        lines.append(f"Refill by {_day_text(st['refill_day'])} (the date set at the last refill: the refill "
                     "reminder comes then).")
    else:
        lines.append(f"Refill by {_day_text(f.get('low_day'))} (the low-reservoir date; no refill recorded yet).")
    return lines


def comparison_table(comparison: dict[str, Any]) -> str:
    """Old and new program side by side (api.Pump.program_compare's comparison)."""
    rows = programs.comparison_rows(dict(comparison["old"]), dict(comparison["new"]))
    return table(rows, ("", "current", "new"))


def program_written_text(done: dict[str, Any]) -> str:
    if not done["written"]:
        return "Nothing was written."
    used = done.get("overrides_used")
    return "The pump accepted the new program." + (f" Soft-limit overrides logged: {', '.join(used)}." if used else "")


def program_text(d: dict[str, Any]) -> str:
    p = d.get("program")
    if not p:
        return "The pump holds no program."
    s = programs.summary(p, 0)
    lines = [f"{p['drug']} at {p['concentration_ug_per_ml']} µg/mL, mode {p['mode']}, pump {d['state']}."]
    lines.append(table([(hhmm(m), str(r), f"{r / 24:.2f}") for m, r in programs.basal_steps(p)],
                       ("from", "µg/day", "µg/h")))
    for b in p.get("periodic_boluses", []) or []:
        lines.append(f"Periodic bolus at {b['time']}: {b['dose_ug']} µg over {b['duration_min']} min.")
    if p.get("patient_bolus"):
        pb = p["patient_bolus"]
        lines.append(f"Patient bolus: {pb['dose_ug']} µg over {pb['duration_min']} min, at most {pb['max_per_24h']} per 24 h, "
                     f"lockout {pb['lockout_min']} min.")
    lines.append(f"Daily total {s['daily_total_ug']:.1f} µg ({s['daily_volume_ul']:.1f} µL/day).")
    return "\n".join(lines)


def since_text(a: dict[str, Any]) -> str:
    """When an alarm was listed: the pump's wall clock (since_wall), else its uptime."""
    w = a.get("since_wall")
    if isinstance(w, (list, tuple)) and len(w) >= 6:
        return "%04d-%02d-%02d %02d:%02d:%02d" % tuple(w[:6])
    return f"uptime {a.get('since')} s (clock not set)"


def audio_pause_text(d: dict[str, Any], wall: Optional[Sequence[int]] = None) -> str:
    """Whether alarm audio is paused, and until when in the pump's time when `wall` is its clock."""
    ms = d.get("audio_paused_ms") or 0
    if ms <= 0:
        return "Alarm audio is not paused."
    if wall:
        until = wallclock.from_pump(wall) + dt.timedelta(milliseconds=ms)
        return f"Alarm audio is paused until {until:%Y-%m-%d %H:%M:%S} pump time ({span_text(ms)} more); the lights stay on."
    return f"Alarm audio is paused for {span_text(ms)} more; the lights stay on."


def alarms_text(d: dict[str, Any], wall: Optional[Sequence[int]] = None) -> str:
    act = d.get("active") or []
    pause = audio_pause_text(d, wall)
    if not act:
        return "No active alarms." + ("" if not d.get("audio_paused_ms") else "\n" + pause)
    return table([(a["code"], a["priority"], since_text(a), a["state"]) for a in act],
                 ("code", "priority", "since (pump time)", "state")) + "\n" + pause


def drugs_text(d: dict[str, Any]) -> str:
    lines = []
    names = {"daily": "daily dose (µg/day)", "rate": "basal rate (µg/day)", "bolus": "clinician bolus (µg)",
             "pbolus": "patient bolus (µg)", "pcount": "patient boluses per 24 h"}
    for e in d["drugs"]:
        concs = e.get("concentrations_ug_per_ml") or e.get("concs") or []
        lines.append(f"{e.get('name')}: concentrations {', '.join(str(c) for c in concs)} µg/mL; "
                     f"24 h maximum {e.get('max24_ug', '?')} µg")
        rows = [(label, str(e[k].get("soft")), str(e[k].get("hard")), str(e[k].get("override", "")))
                for k, label in names.items() if isinstance(e.get(k), dict)]
        if rows:
            lines.append(table(rows, ("limit", "soft", "hard", "override name")))
    return "\n".join(lines) if lines else json.dumps(d, indent=2)


def refill_text(d: dict[str, Any], concentration_changed: bool, bridge: bool) -> str:
    lines = [f"Withdrew {d['withdrawn_ul']} µL; the pump expected {d['expected_ul']} µL (difference {d['mismatch_ul']:+d} µL)."]
    if d.get("warning"):
        lines.append("WARNING: " + d["warning_text"] + ".")
    lines.append(f"Reservoir now {d['volume_ul']} µL.")
    f = d.get("forecast")
    if f:
        lines.append(f"Low reservoir in {f['days_to_low']} days ({wall_text([f['low_day'], 0])[:10]}), refill by then; "
                     f"empty in {f['days_to_empty']} days (assuming every allowed patient bolus).")
    if d.get("bridge_steps"):
        lines.append(f"Bridge bolus: the old drug in tubing and catheter ({d['bridge_steps']} steps) is pushed at the old "
                     "concentration so the prescribed dose holds until the new drug reaches the tip.")
    elif concentration_changed and not bridge:
        lines.append("The concentration changed: consider `--bridge` so the old drug in the catheter is flushed at the prescribed dose.")
    return "\n".join(lines)


def settings_text(d: dict[str, Any]) -> str:
    return table([(k, str(v)) for k, v in d.items()], ("setting", "value"))


# ---- records -----------------------------------------------------------------------------------
def data_text(data: Any) -> str:
    """A record's data whole, as people read it: µg, not \\u00b5g."""
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def log_csv(recs: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["seq", "wall", "uptime_s", "type", "data"])
    for r in recs:
        w.writerow([r["seq"], wall_text(r.get("wall")), r.get("uptime"), r["type"], data_text(r.get("data"))])
    return buf.getvalue().rstrip("\n")


def log_table(recs: list[dict[str, Any]]) -> str:
    rows = [(str(r["seq"]), wall_text(r.get("wall")), r["type"], data_text(r.get("data"))) for r in recs]
    return table(rows, ("seq", "time", "event", "data")) if rows else "No new events."


def history_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No history yet."
    return table([(wall_text([r["hour"] // 24, (r["hour"] % 24) * 3_600_000])[:13] + "h", f"{r['programmed_ug']:.2f}",
                   f"{r['delivered_ug']:.2f}", f"{r['delivered_ul']:.2f}") for r in rows],
                 ("hour", "programmed µg", "delivered µg", "delivered µL"))


def calibration_text(d: dict[str, Any], temperature: float) -> str:
    lines = [f"Run {i + 1}: {r['minutes']} min ({r['ul_per_h']:.0f} µL/h): weighed {r['mass_mg']:.1f} mg = "
             f"{r['volume_ul']:.1f} µL -> {r['pl_per_step'] / 1000:.3f} nL/step" for i, r in enumerate(d["runs"])]
    lines.append(f"Water density at {temperature:.1f} °C: {d['density_g_per_ml']:.5f} g/mL. {d['steps']} steps per run.")
    lines.append(f"Calibration: {d['pl_per_step'] / 1000:.3f} nL per step (was {d['was_pl_per_step'] / 1000:.3f}, "
                 f"{nonneg_zero(d['change_percent']):+.2f} %), stored on the pump with today's date.")
    return "\n".join(lines)


# ---- the bench ---------------------------------------------------------------------------------
def bench_started_text(d: dict[str, Any], log: str, speed: Optional[int]) -> str:
    mode = "lockstep (time moves only with `pumpctl bench advance`)" if not speed else f"{speed}x real time"
    return (f"Virtual bench running, {mode}.\nProgrammer port: {d['port']}\n"
            f"Control channel: {d['control']}\nLog: {log}\n{DISCLAIMER}")


def bench_show_text(d: dict[str, Any]) -> str:
    rows = [("water moved to the outlet", f"{d['outlet_nl'] / 1000:.3f} µL"),
            ("water left in the reservoir", f"{d['reservoir_true_nl'] / 1000:.3f} µL"),
            ("head steps turned", str(d["head_steps"])),
            ("true volume per step", f"{d['true_pl_per_step'] / 1000:.3f} nL"),
            ("steps that moved only air", str(d["dry_steps"])),
            ("battery", f"{d['battery_mv']} mV")]
    if "pressure_kpa" in d:  # the line behind the outlet: what a blockage builds up (Part 8)
        rows.append(("outlet", "BLOCKED" if d.get("outlet_blocked") else "open"))
        rows.append(("pressure in the line", f"{d['pressure_kpa']} kPa"))
        rows.append(("water held in the line (pushed, not yet out)", f"{d.get('stored_nl', 0) / 1000:.3f} µL"))
        rows.append(("steps the stalled head could not turn", str(d.get("stalled_steps", 0))))
    rows.append(("clock", f"{d['clock']['uptime_s']} s since bench start ({d['mode']}); wall {wall_text(d['clock'].get('wall'))}"))
    c = d["clock"]
    if "keeping_up" in c:  # speed mode: did every wake come on time?
        late_s = c["max_late_ms"] / 1000
        rows.append(("keeping up", "yes (latest wake %.1f s of virtual time late)" % late_s if c["keeping_up"]
                     else "no: %d wakes came more than a minute of virtual time late (worst %.0f s); "
                          "try a lower --speed" % (c["late_wakes"], late_s)))
    return "The physical truth on the bench:\n" + table(rows)


def advanced_text(total_ms: int, clock: dict[str, Any]) -> str:
    return f"Advanced {format_ms(total_ms)} of virtual time; bench uptime is now {clock['uptime_s']} s."


def span_text(ms: int) -> str:
    """A span of time for people: 44 d 3 h 10 min, 14 min 24 s, 250 ms."""
    if ms < 1000:
        return f"{ms} ms"
    s = ms // 1000
    parts = [(s // 86_400, "d"), (s // 3600 % 24, "h"), (s // 60 % 60, "min"), (s % 60, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n)


def _pump_time(wall: Optional[Sequence[int]], uptime_s: int) -> str:
    if not wall:
        return f"uptime {uptime_s} s (the pump's clock is not set)"
    return f"{wallclock.from_pump(wall):%Y-%m-%d %H:%M} pump time (uptime {uptime_s} s)"


def advanced_until_text(res: dict[str, Any]) -> str:
    """benchctl.Bench.advance_until's result as sentences."""
    clock, hit, done = res["clock"], res.get("hit"), res["advanced_ms"]
    alarms = res.get("alarms")
    tail = f" Alarms listed: {', '.join(alarms)}." if alarms else ""
    if hit:
        detail = hit["detail"][:1].upper() + hit["detail"][1:]
        when = _pump_time(hit.get("wall"), hit["virtual_ms"] // 1000)
        if hit.get("already"):
            if hit["event"] == "bolus-end" and not hit.get("code"):
                return f"{detail} at {when}, so there is no bolus end to wait for; no time was advanced." + tail
            return f"{detail} at {when}: nothing to wait for, no time was advanced." + tail
        return f"{detail} at {when}, after {span_text(done)} of virtual time." + tail
    now = _pump_time(clock.get("wall"), clock["uptime_s"])
    if res["stopped_by"] == "time":
        return f"Reached {now}, after {span_text(done)} of virtual time."
    until = res["until"]
    if until[:1].isdigit():  # a date (benchctl gives it in ISO), not an event
        until = f"{dt.datetime.fromisoformat(until):%Y-%m-%d %H:%M} pump time"
    return (f"The cap of {span_text(res['cap_ms'])} was reached before {until}: advanced {span_text(done)} "
            f"of virtual time; it is now {now}." + tail)
