"""The app's JSON endpoints for the pump itself: one per action, each one api.Pump call (or a
pumpctl module built on it) under the session's lock. GET reads; POST changes (the guard has
checked its token and origin). A refusal (app.py) is {"error": {"code", "message"}} with the
pump's own sentence, and for a soft limit the override it names (`overrides_needed`).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, current_app, jsonify

from .. import benchctl, calibrate, programs, wallclock
from ..api import Pump
from ..errors import UsageError
from . import inputs as inp
from .session import PumpSession
from .view import status_words

bp = Blueprint("pump", __name__, url_prefix="/api")
PAUSE_MAX_MS = 15 * 60_000


def session() -> PumpSession:
    s: PumpSession = current_app.extensions["pumpctl"]["session"]
    return s


def ok(data: Any) -> Any:
    return jsonify(data)


# ---- status ----------------------------------------------------------------------------------
@bp.get("/status")
def status() -> Any:
    """The pump's status, alarms and audio pause, the bench's lights and buzzer; when a long
    request (an advance) holds the link, the last status with busy: true."""
    s = session()

    def read(pump: Pump) -> dict[str, Any]:
        st = pump.status()
        al = pump.alarms()
        show = pump.bench_show() if pump.bench is not None else None
        return {"status": st, "audio_paused_ms": al.get("audio_paused_ms", 0),
                "bench": {"leds": show.get("leds"), "buzzer_hz": show.get("buzzer_hz"),
                          "clock": show.get("clock")} if show else None}

    got = s.try_run(read)
    if got is None:
        if s.last_status is None:
            return ok({"busy": True})
        return ok(dict(s.last_status, busy=True))
    got["words"] = status_words(got["status"], got["audio_paused_ms"])
    got["busy"] = False
    s.last_status = got
    return ok(got)


@bp.get("/identify")
def identify() -> Any:
    return ok(session().run(lambda p: p.identify()))


# ---- programs --------------------------------------------------------------------------------
def _digest(program: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(program, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _program_in(d: dict[str, Any]) -> dict[str, Any]:
    p = d.get("program")
    if not isinstance(p, dict):
        raise UsageError("send the program as a JSON object (docs/programs.md)")
    programs.check_values(p)
    return p


@bp.get("/program")
def program() -> Any:
    return ok(session().run(lambda p: {"program": p.program_show(), "drugs": p.drugs()}))


@bp.post("/program/check")
def program_check() -> Any:
    """The pump's own reading of the program (program_check), old and new side by side. A
    refusal comes back with the pump's sentence and, for a soft limit, the override it needs."""
    prog = _program_in(inp.body())
    s = session()
    cmp = s.run(lambda p: p.program_compare(prog))
    digest = _digest(prog)
    s.checked[digest] = cmp["comparison"]
    return ok(dict(cmp, digest=digest, rows=programs.comparison_rows(dict(cmp["comparison"]["old"]),
                                                                     dict(cmp["comparison"]["new"]))))


@bp.post("/program/set")
def program_set() -> Any:
    """Write the program the person checked and confirmed: refused unless this very program was
    checked (its digest) and `confirm` is true; api.Pump.program_set compares again first."""
    d = inp.body()
    prog = _program_in(d)
    s = session()
    digest = _digest(prog)
    if not inp.flag(d, "confirm"):
        raise UsageError("writing a program needs the explicit confirmation; nothing was written")
    if d.get("digest") != digest or digest not in s.checked:
        raise UsageError("this program was not checked with the pump as it is now: check it, read the comparison, "
                         "then confirm; nothing was written")
    done = s.run(lambda p: p.program_set(prog, confirm=True))
    s.checked.clear()
    return ok(done)


# ---- therapy ---------------------------------------------------------------------------------
@bp.post("/stop")
def stop() -> Any:
    return ok(session().run(lambda p: p.stop()))


@bp.post("/resume")
def resume() -> Any:
    return ok(session().run(lambda p: p.resume()))


@bp.post("/clock")
def clock() -> Any:
    """Set the pump's clock: to this computer's time, or to `at` (UTC unless it names a zone)."""
    at = inp.text(inp.body(), "at")
    when = wallclock.parse_utc(at) if at else None
    return ok(session().run(lambda p: p.time_sync(when)))


@bp.post("/bolus")
def bolus() -> Any:
    d = inp.body()
    dose = inp.need(d, "dose_ug", "µg", "the bolus dose")
    minutes = inp.whole(d, "duration_min", "min", "the bolus duration", default=10)
    overrides = inp.names(d, "overrides")
    assert minutes is not None
    return ok(session().run(lambda p: p.bolus(dose, minutes, overrides)))


@bp.post("/prime")
def prime() -> Any:
    d = inp.body()
    minutes = inp.whole(d, "minutes", "min", "the priming time", default=10)
    assert minutes is not None
    return ok(session().run(lambda p: p.prime(
        minutes, inp.whole(d, "tubing_ul", "µL", "the tubing volume"), inp.whole(d, "catheter_cm", "cm", "the catheter length"),
        inp.whole(d, "catheter_nl_per_cm", "nL per cm", "the catheter volume per cm"))))


@bp.post("/bridge")
def bridge() -> Any:
    return ok(session().run(lambda p: p.bridge()))


# ---- refill ----------------------------------------------------------------------------------
@bp.get("/refill")
def refill_info() -> Any:
    """What the refill form starts from: the volume the pump expects in the reservoir, and on a
    bench the water really there (what a syringe would withdraw)."""
    def read(p: Pump) -> dict[str, Any]:
        st = p.status()
        show = p.bench_show() if p.bench is not None else None
        return {"expected_ul": st.get("reservoir_ul"), "model_ml": st.get("reservoir_model_ml"),
                "drug": st.get("drug"), "concentration_ug_per_ml": st.get("concentration_ug_per_ml"),
                "state": st.get("state"), "bench_true_ul": show.get("reservoir_true_ul") if show else None,
                "drugs": p.drugs()}
    return ok(session().run(read))


@bp.post("/refill")
def refill() -> Any:
    """Empty and refill (the pump compares withdrawn with expected: the mismatch check), then on
    a bench fill its reservoir with the same water, as `pumpctl refill` does."""
    d = inp.body()
    withdrawn = inp.need(d, "withdrawn_ul", "µL", "the volume withdrawn", minimum=0)
    volume = inp.need(d, "volume_ul", "µL", "the new volume")
    conc = inp.whole(d, "concentration_ug_per_ml", "µg/mL", "the new concentration")
    bridge_ = inp.flag(d, "bridge")

    def go(p: Pump) -> dict[str, Any]:
        out = p.refill(withdrawn, volume, conc, bridge_)
        if p.bench is not None:
            out["bench_fill"] = benchctl.refill_bench(p.bench, volume)
        return out
    return ok(session().run(go))


# ---- alarms ----------------------------------------------------------------------------------
@bp.get("/alarms")
def alarms() -> Any:
    return ok(session().run(lambda p: p.alarms()))


@bp.post("/alarms/ack")
def alarms_ack() -> Any:
    code = inp.text(inp.body(), "code") or "all"
    return ok(session().run(lambda p: p.ack(code)))


@bp.post("/alarms/pause")
def alarms_pause() -> Any:
    ms = inp.duration(inp.body(), "duration", "the audio pause", "2m")
    if not 1000 <= ms <= PAUSE_MAX_MS:
        raise UsageError("the audio pause is 1 s to 15 min, written 90s, 5m, 15m")
    return ok(session().run(lambda p: p.pause(ms)))


@bp.post("/alarms/test")
def alarms_test() -> Any:
    return ok(session().run(lambda p: p.alarms_test()))


# ---- calibration and settings ----------------------------------------------------------------
@bp.post("/calibrate")
def calibrate_run() -> Any:
    """The calibration wizard (pumpctl calibrate): pump the volume, weigh it (the bench's scale,
    or the mass given), store the volume per step."""
    d = inp.body()
    volume = inp.whole(d, "volume_ul", "µL", "the calibration volume", default=500)
    minutes = inp.whole(d, "minutes", "min", "the run time", default=10)
    mass = d.get("mass_mg")
    if isinstance(mass, str):
        mass = mass.strip() or None
    try:
        mass_mg = None if mass is None else float(mass)
        temp = float(d.get("temperature") or 20.0)
    except (TypeError, ValueError):
        raise UsageError("the mass (mg) and the temperature (°C) must be numbers") from None
    force = inp.flag(d, "force")

    def ask(prompt: str) -> str:
        raise UsageError("this pump has no scale the app can read: weigh the water and give its mass in mg")
    assert volume is not None and minutes is not None
    return ok(session().run(lambda p: calibrate.run(p, volume, [minutes], mass_mg, temp, force,
                                                    show_progress=False, ask=ask)))


@bp.get("/settings")
def settings_read() -> Any:
    return ok(session().run(lambda p: {"settings": p.settings(), "drugs": p.drugs()}))


@bp.post("/settings")
def settings_write() -> Any:
    d = inp.body()
    vals = {k: inp.whole(d, k, unit, label, minimum=0) for k, unit, label in (
        ("low_reservoir_ul", "µL", "the low-reservoir threshold"), ("stopped_alarm_h", "h", "the stopped alarm time"),
        ("tubing_ul", "µL", "the tubing volume"), ("catheter_cm", "cm", "the catheter length"),
        ("catheter_nl_per_cm", "nL per cm", "the catheter volume per cm"))}
    return ok(session().run(lambda p: p.settings(**vals)))
