"""The app's JSON endpoints for records (history, the event log, bolus usage), the virtual
bench (advance, faults, the patient button, water, power), the emulated Pico's pins and the
patient view. Built like routes.py: one call of api.Pump, benchctl or pico_pins under the lock.

Research and education prototype: never for human use.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .. import benchctl, pico_pins, usage
from ..api import LOG_PAGE, Pump
from ..errors import BenchError, UsageError
from . import inputs as inp
from .routes import ok, session
from .view import log_rows

bp = Blueprint("lab", __name__, url_prefix="/api")
HISTORY_DAYS = 104  # the hourly history the pump keeps (as `pumpctl history`)


def _arg_int(name: str, default: int, lo: int, hi: int, what: str) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise UsageError(f"{what} must be a whole number, not {raw!r}") from None
    if not lo <= v <= hi:
        raise UsageError(f"{what} must be {lo} to {hi}, not {v}")
    return v


# ---- records ---------------------------------------------------------------------------------
@bp.get("/history")
def history() -> Any:
    """Programmed against delivered, per hour, for the last `days` days (1 to 104)."""
    days = _arg_int("days", 1, 1, HISTORY_DAYS, "days")
    return ok({"days": days, "hours": session().run(lambda p: p.history(days))})


@bp.get("/log")
def log() -> Any:
    """One page of a log ring, newest last: the page ending at `before` (default: the newest)."""
    ring = request.args.get("ring", "events")
    if ring not in ("events", "refusals"):
        raise UsageError("ring must be events or refusals")
    size = _arg_int("size", 20, 1, LOG_PAGE, "the page size")

    def page(p: Pump) -> dict[str, Any]:
        top = p.log_page(0, 1, ring)
        first, last = int(top.get("first_seq") or 0), int(top.get("last_seq") or 0)
        before = _arg_int("before", last + 1, 1, max(last + 1, 1), "before")
        since = max(0, before - 1 - size)
        # A reply holds as many records as fit in one frame: ask until the page is complete.
        got = p.log(since, until=before - 1, page=size, ring=ring) if last and before > 1 else []
        recs = [r for r in got if r.get("seq", 0) < before][-size:]
        return {"ring": ring, "first_seq": first, "last_seq": last, "records": log_rows(recs),
                "older": since if since >= max(first, 1) else None,
                "newer": before + size if before <= last else None}
    return ok(session().run(page))


@bp.get("/usage")
def bolus_usage() -> Any:
    """The patient bolus usage report per day (usage.fetch: the pump's own counts)."""
    days = _arg_int("days", 7, 1, usage.MAX_DAYS, "days")
    return ok(session().run(lambda p: usage.fetch(p, days).as_dict()))


# ---- the virtual bench -----------------------------------------------------------------------
@bp.get("/bench/show")
def bench_show() -> Any:
    s = session()
    return ok(s.run(lambda p: p.bench_show()))


@bp.post("/bench/advance")
def bench_advance() -> Any:
    """Move a lockstep bench's time: by a duration, or until an event or a date (and a cap)."""
    d = inp.body()
    s = session()
    until = inp.text(d, "until")
    if until:
        cap = inp.duration(d, "cap", "the cap", "400d")
        return ok(s.run(lambda p: p.bench_advance_until(until, cap)))
    ms = inp.duration(d, "duration", "how long to advance")
    return ok({"advanced_ms": ms, "clock": s.run(lambda p: p.bench_advance(ms))})


@bp.post("/bench/fault")
def bench_fault() -> Any:
    d = inp.body()
    fault = inp.text(d, "fault") or ""
    on = not inp.flag(d, "clear")
    mv = inp.whole(d, "mv", "mV", "the battery voltage") if on else None
    return ok(session().run(lambda p: p.bench_fault(fault, on, mv)))


@bp.post("/bench/press")
def bench_press() -> Any:
    s = session()
    return ok(s.run(lambda p: s.bench().press()))


@bp.post("/bench/fill")
def bench_fill() -> Any:
    volume = benchctl.parse_volume_ul(inp.text(inp.body(), "volume") or "")
    s = session()
    return ok(s.run(lambda p: s.bench().fill(volume)))


@bp.post("/bench/power-cycle")
def bench_power_cycle() -> Any:
    d = inp.body()
    down = inp.duration(d, "down", "how long the power stays off", "0s") if inp.text(d, "down") else 0
    return ok(session().power_cycle(down))


# ---- the emulated Pico -----------------------------------------------------------------------
def _pico() -> pico_pins.PicoInfo:
    info = session().pico
    if info is None:
        raise BenchError("this pump is not an emulated Pico (start the app with --pico)")
    return info


@bp.get("/pico/pins")
def pico_pins_now() -> Any:
    return ok(pico_pins.pins(_pico()))


@bp.post("/pico/button")
def pico_button() -> Any:
    pico_pins.button(_pico(), "press")
    return ok({"pressed": True})


@bp.post("/pico/battery")
def pico_battery() -> Any:
    mv = inp.need(inp.body(), "mv", "mV", "the battery voltage", minimum=0)
    return ok({"mv": mv, "adc_raw": pico_pins.set_battery(_pico(), mv)})


# ---- the patient view ------------------------------------------------------------------------
def _patient_view(p: Pump) -> dict[str, Any]:
    st = p.status()
    today = usage.fetch(p, 1).as_dict()
    prog = p.program_show().get("program") or {}
    return {"bolus": st.get("bolus"), "state": st.get("state"), "patient_bolus": prog.get("patient_bolus"),
            "today": today, "alarms": [{"code": a.get("code"), "priority": a.get("priority"), "state": a.get("state")}
                                       for a in st.get("alarms") or []]}


@bp.get("/patient/status")
def patient_status() -> Any:
    """What the patient's handset shows: its bolus (programmed or not), one running, today's
    attempts and what came of them; read with the patient's key (two frames of the six a
    minute the pump takes from it, so the page asks on load and after a bolus, not in a poll)."""
    with session().as_patient() as pump:
        return ok(_patient_view(pump))


@bp.post("/patient/bolus")
def patient_bolus() -> Any:
    """Ask for a patient bolus, signed with the patient's key: the pump's lockout and limits
    decide; a refusal is its sentence."""
    with session().as_patient() as pump:
        reply = pump.patient_bolus()
        return ok({"reply": reply, "view": _patient_view(pump)})
