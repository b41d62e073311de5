"""`pumpctl report`: one report of the pump's session a student can hand in: who the pump is,
the program now and its changes, delivered against programmed per hour, boluses and the
patient bolus usage, alarms, refills and the reservoir's dates, and the accuracy results if a
test was run. An HTML page with its PNG plots beside it, and the same in Markdown.

collect() asks the pump (through api.Pump, logs and usage) and returns plain data; write()
turns that data into files and never talks to a pump. Every date is the pump's clock (UTC).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from . import logs, usage, wallclock
from .api import Pump
from .errors import UsageError

FORMATS = ("html", "md", "both")
DISCLAIMER = "Research and education prototype, never for human use."
STEPS = 8  # collect()'s progress steps
StepFn = Optional[Callable[[int], None]]


# ---- the pump's clock as text -------------------------------------------------------------------
def wall_text(wall: Optional[Sequence[int]], seconds: bool = False) -> str:
    """[day, ms] (the protocol's) or [y, m, d, h, min, s] (an alarm's since_wall) as text."""
    if not wall:
        return "clock not set"
    try:
        if len(wall) >= 6:
            y, mo, d, h, mi, s = (int(v) for v in wall[:6])
            t = dt.datetime(y, mo, d, h, mi, s)
        else:
            t = wallclock.from_pump(wall)
    except (TypeError, ValueError, OverflowError):
        return "?"
    return f"{t:%Y-%m-%d %H:%M:%S}" if seconds else f"{t:%Y-%m-%d %H:%M}"


def day_text(day: Optional[int]) -> Optional[str]:
    return None if day is None else wall_text([day, 0])[:10]


# ---- what a log record says, for people ---------------------------------------------------------
def _ug(v: Any) -> str:
    return f"{v} µg" if v is not None else "? µg"


def describe(rec: dict[str, Any]) -> str:
    """One sentence for an event log record (docs/protocol.md), in the user's units."""
    t, raw = rec.get("type"), rec.get("data")
    d: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if t == "program":
        return (f"program written: {d.get('drug', '?')} {d.get('conc', '?')} µg/mL, {d.get('mode', '?')}, "
                f"{_ug(d.get('daily_ug'))}/day")
    if t == "override":
        return f"soft limit {d.get('limit', '?')} overridden ({d.get('drug', '?')})"
    if t == "settings":
        return "settings changed: " + (", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none")
    if t == "stop":
        return "delivery stopped"
    if t == "resume":
        return "delivery resumed"
    if t == "bolus":
        kind = d.get("kind", "?")
        dose = f" {_ug(d['dose_ug'])}" if "dose_ug" in d else ""
        dur = f" over {d['min']} min" if "min" in d else ""
        why = f" ({d.get('why') or d.get('code')})" if d.get("why") or d.get("code") else ""
        return f"{kind} bolus{dose}{dur}: {d.get('outcome', '?')}{why}"
    if t == "patient_bolus":
        return f"patient bolus ({d.get('src', '?')}): {d.get('outcome', '?')}; {d.get('why', '')}".rstrip("; ")
    if t == "refill":
        warn = "; WARNING: withdrawn volume differs from expected" if d.get("warn") else ""
        return (f"refill: withdrew {d.get('withdrawn_ul', '?')} µL (expected {d.get('expected_ul', '?')} µL), "
                f"filled {d.get('volume_ul', '?')} µL at {d.get('conc', '?')} µg/mL{warn}")
    if t == "alarm":
        what = {"raise": "raised", "clear": "cleared", "ack": "acknowledged", "pause": "audio paused",
                "resume": "audio pause ended", "lost": "alarm events lost"}.get(str(d.get("ev")), d.get("ev"))
        extra = f" for {d['ms'] // 60000} min" if d.get("ev") == "pause" and isinstance(d.get("ms"), int) else ""
        return f"alarm {d.get('code') or ''} {what}{extra}".replace("  ", " ")
    if t == "prime":
        return f"priming: {d.get('steps', '?')} steps over {d.get('min', '?')} min"
    if t == "power_on":
        return f"power on ({d.get('cause', '?')}), firmware {d.get('fw', '?')}"
    if t == "clock_set":
        return "clock set" + (" (it was set before)" if d.get("was") else "")
    if t == "under_delivery":
        return "under-delivery logged: " + str(d.get("why") or (f"down {d.get('down_ms', 0) // 60000} min"
                                                                 if isinstance(d.get("down_ms"), int) else "outage"))
    if t == "calibration":
        return f"calibration stored: {d.get('pl_per_step', '?')} pL per step (was {d.get('was', '?')})"
    if t == "refused":
        return f"refused: {d.get('cmd', '?')} ({d.get('code', '?')})"
    if t == "battery":
        return f"battery {d.get('level', '?')} at {d.get('mv', '?')} mV"
    return f"{t}: {json.dumps(d, ensure_ascii=False)[:120]}"


def _entry(rec: dict[str, Any]) -> dict[str, Any]:
    return {"seq": rec.get("seq"), "when": wall_text(rec.get("wall")), "type": rec.get("type"),
            "what": describe(rec)}


PROGRAM_TYPES = ("program", "override", "settings", "stop", "resume", "prime", "calibration", "clock_set",
                 "refused")
BOLUS_TYPES = ("bolus", "patient_bolus")


# ---- accuracy results ---------------------------------------------------------------------------
def read_accuracy(folder: Optional[Path]) -> Optional[dict[str, Any]]:
    """What `pumpctl accuracy --out DIR` left in `folder` (summary.csv, trumpet.csv and its
    PNGs), or None when no test was run there."""
    if folder is None or not (folder / "summary.csv").is_file():
        return None
    try:
        with open(folder / "summary.csv", newline="") as f:
            summary = {r["key"]: float(r["value"]) for r in csv.DictReader(f)}
        trumpet = []
        if (folder / "trumpet.csv").is_file():
            with open(folder / "trumpet.csv", newline="") as f:
                trumpet = [{"window_min": int(r["window_min"]), "max_error_pct": float(r["max_error_pct"]),
                            "min_error_pct": float(r["min_error_pct"])} for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as e:
        raise UsageError(f"the accuracy results in {folder} cannot be read ({e}); "
                         "run `pumpctl accuracy` again or leave out --accuracy") from None
    pngs = [str(folder / n) for n in ("trumpet.png", "startup.png") if (folder / n).is_file()]
    return {"dir": str(folder), "summary": summary, "trumpet": trumpet, "pngs": pngs}


# ---- collect ------------------------------------------------------------------------------------
def _subject(pump: Pump, ident: dict[str, Any]) -> dict[str, Any]:
    if pump.bench is not None:
        return {"kind": "bench", "name": f"virtual bench in {pump.bench.dir}"}
    return {"kind": "board", "name": f"board {ident.get('board', '?')} ({ident.get('device_id', '?')})"}


def collect(pump: Pump, days: int = 1, accuracy_dir: Optional[Path] = None, step: StepFn = None) -> dict[str, Any]:
    """Everything the report shows, as plain data (see write). `days`: hours of history;
    `step(n)` is told each of STEPS steps done."""
    if type(days) is not int or not 1 <= days <= 31:
        raise UsageError(f"--days must be a whole number of days from 1 to 31, got {days!r}")
    acc = read_accuracy(accuracy_dir)  # a bad folder is refused before the pump is asked

    def done(n: int) -> None:
        if step:
            step(n)

    ident = pump.identify()
    st = pump.status()
    done(1)
    prog = pump.program_show()
    done(2)
    got = logs.fetch(pump, since=0, progress=False)
    records = got["records"]
    # Refused patient requests are kept in the refusals' ring (issue 16): the bolus list shows them too.
    refused = [r for r in (logs.download(pump, since=0, progress=False, ring="refusals")
                           if usage.has_refusals_ring(pump) else []) if r.get("type") == "patient_bolus"]
    boluses = sorted((r for r in records + refused if r.get("type") in BOLUS_TYPES),
                     key=lambda r: (tuple(r.get("wall") or (-1, -1)), r.get("uptime") or 0))
    done(3)
    hist = pump.history(days)
    done(4)
    u = usage.fetch(pump)
    done(5)
    al = pump.alarms()
    done(6)
    fc = st.get("forecast") or {}
    subject = _subject(pump, ident)
    data = {
        "title": f"Pump session report: {subject['name']}",
        "disclaimer": DISCLAIMER,
        "subject": subject,
        "identity": {k: ident.get(k) for k in ("device_id", "board", "firmware_version", "protocol", "device")},
        "pump_time": st.get("wall"),
        "pump_time_text": wall_text(st.get("wall")) + " pump time (UTC)" if st.get("wall") else
                          "the pump's clock is not set: dates are unknown",
        "status": {k: st.get(k) for k in ("state", "stop_reason", "drug", "concentration_ug_per_ml", "mode",
                                           "rate_ug_per_day", "reservoir_ul", "low_reservoir_ul", "delivered_ug",
                                           "delivered_ul", "dose_24h_ug", "max_24h_ug", "uptime_s", "battery_mv",
                                           "reservoir_model_ml")},
        "program": prog.get("program"),
        "program_state": prog.get("state", st.get("state")),
        "program_changes": [_entry(r) for r in records if r.get("type") in PROGRAM_TYPES],
        "history": hist,
        "boluses": [_entry(r) for r in boluses],
        "usage": u.as_dict(),
        "alarms_active": [{"code": a.get("code"), "priority": a.get("priority"), "state": a.get("state"),
                           "since": wall_text(a.get("since_wall")) if a.get("since_wall") else
                           f"uptime {a.get('since')} s"} for a in al.get("active") or []],
        "alarm_events": [_entry(r) for r in records if r.get("type") in ("alarm", "occlusion", "battery",
                                                                         "under_delivery")],
        "audio_paused_ms": al.get("audio_paused_ms", 0),
        "refills": [_entry(r) for r in records if r.get("type") == "refill"],
        "dates": {"low_reservoir": day_text(fc.get("low_day")), "empty": day_text(fc.get("empty_day")),
                  "refill_by": day_text(st.get("refill_day") if st.get("refill_day") is not None
                                        else fc.get("low_day")),
                  "days_to_low": fc.get("days_to_low"), "days_to_empty": fc.get("days_to_empty"),
                  "daily_ul_worst": fc.get("daily_ul_worst")},
        "accuracy": acc,
        "log": {"records": len(records), "lost": got.get("lost_total", 0),
                "lost_text": logs.lost_sentence(got, wall_text)},
    }
    done(STEPS - 1)
    return data


# ---- write --------------------------------------------------------------------------------------
def make_plots(data: dict[str, Any], out: Path) -> dict[str, Path]:
    """The report's PNGs in `out`: history.png, reservoir.png, usage.png (each when there is
    something to draw), and the accuracy test's PNGs copied beside them."""
    from . import plots  # matplotlib (Agg) only when a report is written
    made: dict[str, Path] = {}
    if data.get("history"):
        made["history"] = plots.history(data["history"], out / "history.png",
                                        title="Programmed and delivered dose per hour (pump's clock)")
    st, fc = data.get("status") or {}, data.get("dates") or {}
    if st.get("reservoir_ul") is not None and data.get("pump_time"):
        ul_day = float(fc.get("daily_ul_worst") or 0)
        made["reservoir"] = plots.reservoir_projection(float(st["reservoir_ul"]), ul_day, out / "reservoir.png",
                                                       start=plots.pump_datetime(data["pump_time"]),
                                                       low_ul=float(st.get("low_reservoir_ul") or 2000))
    days = [d for d in (data.get("usage") or {}).get("days", []) if d.get("date")]
    if days:
        made["usage"] = plots.bolus_usage(days, out / "usage.png")
    for src in (data.get("accuracy") or {}).get("pngs", []):
        dst = out / f"accuracy-{Path(src).name}"
        if Path(src).resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        made[f"accuracy-{Path(src).stem}"] = dst
    return made


def _pct(v: float) -> str:
    """A signed percentage with two decimals, never "-0.00"."""
    return f"{round(float(v), 2) + 0.0:+.2f}"


def _usage_table(u: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["day (pump's clock)", "attempts", "delivered", "refused: lockout", "refused: daily limit",
            "refused: too many requests", "other"]
    rows = [[("-".join(f"{v:02d}" for v in d["date"]) if d.get("date") else "clock not set"),
             *[str(d.get(f, 0)) for f in usage.FIELDS]] for d in u.get("days", [])]
    t = u.get("totals") or {}
    if rows:
        rows.append(["total", *[str(t.get(f, 0)) for f in usage.FIELDS]])
    return head, rows


def _history_rows(hist: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["hour (pump's clock)", "programmed (µg)", "delivered (µg)", "delivered (µL)", "difference (µg)"]
    rows = []
    for r in hist:
        d = r["delivered_ug"] - r["programmed_ug"]
        rows.append([wall_text([r["hour"] // 24, (r["hour"] % 24) * 3_600_000]), f"{r['programmed_ug']:.2f}",
                     f"{r['delivered_ug']:.2f}", f"{r.get('delivered_ul', 0):.2f}", f"{round(d, 2) + 0.0:+.2f}"])
    if hist:
        p = sum(r["programmed_ug"] for r in hist)
        d = sum(r["delivered_ug"] for r in hist)
        rows.append(["total", f"{p:.2f}", f"{d:.2f}", f"{sum(r.get('delivered_ul', 0) for r in hist):.2f}",
                     f"{round(d - p, 2) + 0.0:+.2f}"])
    return head, rows


def _program_lines(p: Optional[dict[str, Any]]) -> list[str]:
    if not p:
        return ["No program is held: the pump delivers nothing."]
    lines = [f"{p.get('drug', '?')} {p.get('concentration_ug_per_ml', '?')} µg/mL, mode {p.get('mode', '?')}"]
    if p.get("mode") == "continuous":
        lines.append(f"rate {p.get('rate_ug_per_day', '?')} µg/day")
    for s in p.get("steps") or []:
        lines.append(f"from {s.get('start')}: {s.get('rate_ug_per_day')} µg/day")
    if p.get("min_rate_ug_per_day"):
        lines.append(f"minimum rate {p['min_rate_ug_per_day']} µg/day")
    for b in p.get("periodic_boluses") or []:
        lines.append(f"periodic bolus at {b.get('time')}: {b.get('dose_ug')} µg over {b.get('duration_min')} min")
    pb = p.get("patient_bolus")
    if pb:
        lines.append(f"patient bolus {pb.get('dose_ug')} µg over {pb.get('duration_min')} min, at most "
                     f"{pb.get('max_per_24h')} per 24 h, lockout {pb.get('lockout_min')} min")
    else:
        lines.append("no patient bolus programmed")
    return lines


def _status_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    st, dates = data["status"], data["dates"]
    pairs = [("state", f"{st.get('state')}" + (f" ({st['stop_reason']})" if st.get("stop_reason") else "")),
             ("reservoir", f"{st.get('reservoir_ul')} µL of a {st.get('reservoir_model_ml')} mL pump"
                           f" (low-reservoir threshold {st.get('low_reservoir_ul')} µL)"),
             ("delivered since start", f"{st.get('delivered_ug')} µg ({st.get('delivered_ul')} µL)"),
             ("dose in the last 24 h", f"{st.get('dose_24h_ug')} µg of at most {st.get('max_24h_ug')} µg")]
    if st.get("battery_mv") is not None:
        pairs.append(("battery", f"{st['battery_mv']} mV"))
    if dates.get("low_reservoir"):
        pairs.append(("low reservoir", f"{dates['low_reservoir']} (in {dates.get('days_to_low')} days)"))
    if dates.get("refill_by"):
        pairs.append(("refill by", dates["refill_by"]))
    if dates.get("empty"):
        pairs.append(("empty", f"{dates['empty']} (in {dates.get('days_to_empty')} days, every allowed "
                               "patient bolus included)"))
    return pairs


def _sections(data: dict[str, Any], plots: dict[str, Path]) -> list[dict[str, Any]]:
    """The report as sections of paragraphs, tables and images: one model both renderers share."""
    def img(key: str, alt: str) -> list[dict[str, Any]]:
        return [{"img": plots[key].name, "alt": alt}] if key in plots else []

    entries = ["when (pump's clock)", "what"]
    s: list[dict[str, Any]] = []
    ident = data["identity"]
    s.append({"id": "identity", "title": "Pump and session", "items": [
        {"pairs": [("subject", data["subject"]["name"]), ("device", f"{ident.get('device_id')}, board "
                   f"{ident.get('board')}, firmware {ident.get('firmware_version')}, protocol {ident.get('protocol')}"),
                   ("dated", data["pump_time_text"])] + _status_pairs(data)}]})
    changes = [[e["when"], e["what"]] for e in data["program_changes"]]
    s.append({"id": "program", "title": "Program", "items": [
        {"p": f"The program now ({data.get('program_state')}):"}, {"list": _program_lines(data.get("program"))},
        {"p": "Changes from the event log:" if changes else "No program changes in the event log."},
        *([{"table": (entries, changes)}] if changes else [])]})
    hh, hr = _history_rows(data["history"])
    s.append({"id": "history", "title": "Delivered against programmed, per hour", "items": (
        img("history", "programmed and delivered dose per hour") + [{"table": (hh, hr)}]) if hr else
        [{"p": "No hourly history yet (the pump's clock was not set, or no hour has passed)."}]})
    bol = [[e["when"], e["what"]] for e in data["boluses"]]
    uh, ur = _usage_table(data["usage"])
    usage_p = ("Patient bolus usage per day, counted by the pump" if data["usage"].get("source") == "pump"
               else "Patient bolus usage per day, counted from the pump's logs")
    s.append({"id": "boluses", "title": "Boluses and patient bolus usage", "items": [
        *([{"table": (entries, bol)}] if bol else [{"p": "No bolus in the event log."}]),
        {"p": usage_p + ":" if ur else usage_p + ": no patient bolus was asked for."},
        *img("usage", "patient bolus requests per day"),
        *([{"table": (uh, ur)}] if ur else []),
        *[{"p": n} for n in data["usage"].get("notes", [])]]})
    act = [[a["code"], a["priority"], a["state"], a["since"]] for a in data["alarms_active"]]
    ev = [[e["when"], e["what"]] for e in data["alarm_events"]]
    paused = data.get("audio_paused_ms") or 0
    s.append({"id": "alarms", "title": "Alarms", "items": [
        *([{"table": (["code", "priority", "state", "since (pump's clock)"], act)}] if act
          else [{"p": "No alarm is listed now."}]),
        *([{"p": f"Alarm audio is paused for {-(-paused // 60000)} min more."}] if paused else []),
        {"p": "Alarm events from the event log:" if ev else "No alarm events in the event log."},
        *([{"table": (entries, ev)}] if ev else [])]})
    rf = [[e["when"], e["what"]] for e in data["refills"]]
    d = data["dates"]
    s.append({"id": "refills", "title": "Refills and reservoir dates", "items": [
        *([{"table": (entries, rf)}] if rf else [{"p": "No refill in the event log."}]),
        {"pairs": [("low reservoir", d.get("low_reservoir") or "not forecast (nothing programmed or no clock)"),
                   ("refill by", d.get("refill_by") or "not forecast"), ("empty", d.get("empty") or "not forecast")]},
        *img("reservoir", "reservoir projection")]})
    acc = data.get("accuracy")
    if acc:
        sm = acc["summary"]
        tr = [[str(t["window_min"]), _pct(t["min_error_pct"]), _pct(t["max_error_pct"])]
              for t in acc["trumpet"]]
        items: list[dict[str, Any]] = [{"pairs": [("results from", acc["dir"]),
                            ("programmed flow", f"{sm.get('rate_ml_h', 0) * 1000:.4g} µL/h"),
                            ("mean flow", f"{sm.get('mean_flow_ml_h', 0) * 1000:.4g} µL/h"),
                            ("overall error", _pct(sm.get("overall_error_pct", 0)) + " %")]}]
        if tr:
            items.append({"table": (["window (min)", "minimum error (%)", "maximum error (%)"], tr)})
        items += img("accuracy-trumpet", "trumpet curve") + img("accuracy-startup", "start-up curve")
    else:
        items = [{"p": "No accuracy test results (run `pumpctl accuracy`, then give its folder with --accuracy)."}]
    s.append({"id": "accuracy", "title": "Accuracy (IEC 60601-2-24)", "items": items})
    lg = data["log"]
    s.append({"id": "log", "title": "Event log", "items": [
        {"p": f"{lg['records']} records read from the pump's event log."},
        *([{"p": lg["lost_text"]}] if lg.get("lost_text") else [])]})
    return s


_CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}th{background:#f3f3f3}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em}img{max-width:100%;border:1px solid #ddd}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}"""


def render_html(data: dict[str, Any], plots: dict[str, Path]) -> str:
    """The report as one HTML page (plots referenced by file name, beside it). Every text from
    the pump or the log is escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(data['title'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(data['title'])}</h1>", f'<p class="warn"><strong>{e(data["disclaimer"])}</strong></p>',
           f"<p>Dated {e(data['pump_time_text'])}. Every time in this report is the pump's clock.</p>"]
    for sec in _sections(data, plots):
        out.append(f'<section id="{e(sec["id"])}"><h2>{e(sec["title"])}</h2>')
        for it in sec["items"]:
            if "p" in it:
                out.append(f"<p>{e(it['p'])}</p>")
            elif "list" in it:
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in it["list"]) + "</ul>")
            elif "pairs" in it:
                out.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in it["pairs"]) + "</dl>")
            elif "table" in it:
                head, rows = it["table"]
                out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
                           + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
                           + "</tbody></table>")
            elif "img" in it:
                out.append(f'<p><img src="{e(it["img"])}" alt="{e(it["alt"])}"></p>')
        out.append("</section>")
    out.append(f"<footer><p>{e(data['disclaimer'])} Written by pumpctl report.</p></footer></body></html>")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    """Text in a Markdown table cell or line: no pipes or newlines break the table."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_md(data: dict[str, Any], plots: dict[str, Path]) -> str:
    out = [f"# {_md(data['title'])}", "", f"**{_md(data['disclaimer'])}**", "",
           f"Dated {_md(data['pump_time_text'])}. Every time in this report is the pump's clock.", ""]
    for sec in _sections(data, plots):
        out += [f"## {_md(sec['title'])}", ""]
        for it in sec["items"]:
            if "p" in it:
                out += [_md(it["p"]), ""]
            elif "list" in it:
                out += [f"- {_md(x)}" for x in it["list"]] + [""]
            elif "pairs" in it:
                out += [f"- **{_md(k)}**: {_md(v)}" for k, v in it["pairs"]] + [""]
            elif "table" in it:
                head, rows = it["table"]
                out += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
                out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows] + [""]
            elif "img" in it:
                out += [f"![{_md(it['alt'])}]({it['img']})", ""]
    return "\n".join(out)


def write(data: dict[str, Any], out_dir: str | Path, fmt: str = "both") -> dict[str, Any]:
    """Write the report of `data` (collect's) into `out_dir`: report.html and/or report.md
    with the PNGs beside them. Returns {"html": path or None, "md": path or None, "plots": [...]}."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: give a folder for the report and its plots")
    try:
        out.mkdir(parents=True, exist_ok=True)
        made = make_plots(data, out)
        res: dict[str, Any] = {"html": None, "md": None, "plots": [str(p) for p in made.values()]}
        if fmt in ("html", "both"):
            p = out / "report.html"
            p.write_text(render_html(data, made), encoding="utf-8")
            res["html"] = str(p)
        if fmt in ("md", "both"):
            p = out / "report.md"
            p.write_text(render_md(data, made), encoding="utf-8")
            res["md"] = str(p)
    except OSError as e:
        raise UsageError(f"the report cannot be written to {out}: {e.strerror or e}") from None
    return res


def build(pump: Pump, out_dir: str | Path, fmt: str = "both", days: int = 1,
          accuracy_dir: Optional[Path] = None, step: StepFn = None) -> dict[str, Any]:
    """collect() then write(): the files written, and the collected data under "data"."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    data = collect(pump, days, accuracy_dir, step)
    res = write(data, out_dir, fmt)
    if step:
        step(STEPS)
    res["data"] = data
    return res

