"""The Python API for scripts and notebooks, and the one client layer the CLI is built on:

    import pumpctl
    with pumpctl.connect() as pump:          # the running virtual bench, or port="/dev/ttyACM0"
        pump.program_continuous(500, 2000, confirm=True)   # writing therapy needs confirm
        pump.bench_advance(3_600_000)         # virtual bench only
        pump.bench_advance_until("low-reservoir")   # or "2027-03-01T08:00"; stops at a 400-day cap
        print(pump.status()["delivered_ul"])

Every method sends protocol requests (docs/protocol.md) and returns the reply's data as a dict.
A refusal raises pumpctl.errors.DeviceError with the device's `.code`; no reply raises
errors.NoReply (a LinkFailed); bench-only methods on a real board raise BenchError. Nothing here
prints: sentences for people are in render.py.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable, Optional

from . import bench as benchmod
from . import benchctl, programs, wallclock
from .errors import BenchError, UsageError
from .link import Link

EPOCH_2000 = wallclock.EPOCH_2000  # kept importable from here for scripts
LOG_PAGE = 40        # records per log request (one frame)
HISTORY_PAGE_H = 48  # hours per history request (one frame)

ProgressFn = Optional[Callable[[int], None]]  # told how far a long download has got


def _whole(name: str, v: Any, minimum: int = 1) -> int:
    if type(v) is not int or v < minimum:
        raise UsageError(f"{name} must be a {'positive ' if minimum > 0 else ''}whole number, got {v!r}")
    return v


class Pump:
    """One connection to a pump. Use as a context manager, or call close()."""

    def __init__(self, link: Link, bench: Optional[benchmod.BenchInfo] = None) -> None:
        self.link = link
        self.bench = bench

    # ---- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "Pump":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- who and how ----------------------------------------------------------------------------
    def identify(self) -> dict[str, Any]:
        return self.link.request("identify")

    def status(self) -> dict[str, Any]:
        return self.link.request("status")

    def drugs(self) -> dict[str, Any]:
        return self.link.request("drugs")

    # ---- programs ------------------------------------------------------------------------------
    def program_check(self, program: dict[str, Any]) -> dict[str, Any]:
        """What the pump would make of `program` (old and new), without writing it."""
        return self.link.request("program_check", {"program": _program(program)})

    def program_compare(self, program: dict[str, Any]) -> dict[str, Any]:
        """The pump's current program and `program` as it would take it, with a summary of
        each (dose per hour, daily total, days to low reservoir): nothing is written."""
        st = self.status()
        check = self.program_check(program)
        return {"old": check.get("old"), "new": check["new"],
                "comparison": {"old": programs.summary(check.get("old"), st["reservoir_ul"]),
                               "new": programs.summary(check["new"], st["reservoir_ul"])}}

    def program_set(self, program: dict[str, Any],
                    confirm: "bool | Callable[[dict[str, Any]], bool] | None" = None) -> dict[str, Any]:
        """Write a program dict (docs/programs.md) after comparing old and new (program_compare).
        Writing therapy needs an explicit confirmation: `confirm=True` (the caller has confirmed,
        like `--yes`) or `confirm(comparison)` returning True; without one (None, False) it
        raises UsageError and writes nothing; a function returning False writes nothing either.
        Returns written, old, new, overrides_used and the comparison."""
        if confirm is None or confirm is False:
            raise UsageError("writing a program needs a confirmation: pass confirm=True, or a function that "
                             "sees the comparison and returns True; nothing was written")
        cmp = self.program_compare(program)
        if confirm is not True and not confirm(cmp):
            return {"written": False, "old": cmp["old"], "new": cmp["new"]}
        done = self.link.request("program_set", {"program": program})
        out = {"written": True, "old": done.get("old"), "new": done["new"],
               "overrides_used": done.get("overrides_used", []), "comparison": cmp["comparison"]}
        if done.get("cached") is True:
            out["cached"] = True  # the pump's retry cache answered: it was written once, before
        return out

    def program_continuous(self, rate_ug_per_day: int, concentration_ug_per_ml: int, drug: str = "baclofen",
                           confirm: "bool | Callable[[dict[str, Any]], bool] | None" = None) -> dict[str, Any]:
        """A continuous program written with program_set: `confirm` as there (required)."""
        _whole("rate_ug_per_day", rate_ug_per_day)
        _whole("concentration_ug_per_ml", concentration_ug_per_ml)
        return self.program_set(programs.continuous(rate_ug_per_day, concentration_ug_per_ml, drug), confirm)

    def program_show(self) -> dict[str, Any]:
        return self.link.request("program_show")

    # ---- therapy -------------------------------------------------------------------------------
    def stop(self) -> dict[str, Any]:
        return self.link.request("stop", signed=True)

    def resume(self) -> dict[str, Any]:
        return self.link.request("resume", signed=True)

    def bolus(self, dose_ug: int, duration_min: int = 10, overrides: Optional[list[str]] = None) -> dict[str, Any]:
        """A clinician bolus; the program resumes after it. `overrides` confirm soft limits."""
        a: dict[str, Any] = {"dose_ug": dose_ug, "duration_min": _whole("duration_min", duration_min)}
        if overrides:
            a["overrides"] = list(overrides)
        return self.link.request("bolus", a)

    def patient_usage(self) -> dict[str, Any]:
        """Per-day patient bolus usage rows (patient role): given, refused, rate-limited."""
        return self.link.request("patient_usage")

    def patient_bolus(self) -> dict[str, Any]:
        """Ask for a patient bolus (connect with role="patient"; lockout and daily limit apply)."""
        return self.link.request("patient_bolus")

    def prime(self, minutes: int = 10, tubing_ul: Optional[int] = None, catheter_cm: Optional[int] = None,
              catheter_nl_per_cm: Optional[int] = None) -> dict[str, Any]:
        """A priming bolus that fills pump tubing and catheter (volume, not dose)."""
        a = _given(duration_min=minutes, tubing_ul=tubing_ul, catheter_cm=catheter_cm,
                   catheter_nl_per_cm=catheter_nl_per_cm)
        return self.link.request("prime", a)

    def bridge(self) -> dict[str, Any]:
        """The bridge bolus after a concentration change."""
        return self.link.request("bridge")

    def refill(self, withdrawn_ul: int, volume_ul: int, concentration_ug_per_ml: Optional[int] = None,
               bridge: bool = False) -> dict[str, Any]:
        """Empty and refill: withdrawn compared with expected, then the new volume (and drug)."""
        a = _given(withdrawn_ul=withdrawn_ul, volume_ul=volume_ul, concentration_ug_per_ml=concentration_ug_per_ml)
        if bridge:
            a["bridge"] = True
        return self.link.request("refill", a)

    def settings(self, low_reservoir_ul: Optional[int] = None, stopped_alarm_h: Optional[int] = None,
                 tubing_ul: Optional[int] = None, catheter_cm: Optional[int] = None,
                 catheter_nl_per_cm: Optional[int] = None) -> dict[str, Any]:
        """Change the settings given (none: only read them); returns every setting."""
        return self.link.request("settings", _given(
            low_reservoir_ul=low_reservoir_ul, stopped_alarm_h=stopped_alarm_h, tubing_ul=tubing_ul,
            catheter_cm=catheter_cm, catheter_nl_per_cm=catheter_nl_per_cm))

    # ---- clock ----------------------------------------------------------------------------------
    def time_sync(self, at: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Set the pump's wall clock to `at` (UTC when it has no zone; default now)."""
        day, ms = wallclock.to_pump(at)
        return self.link.request("time_set", {"day": day, "ms": ms}, signed=True)

    # ---- alarms ---------------------------------------------------------------------------------
    def alarms(self) -> dict[str, Any]:
        return self.link.request("alarms")

    def ack(self, code: str = "all") -> dict[str, Any]:
        if not isinstance(code, str) or not code:
            raise UsageError("ack needs an alarm code or 'all'")
        return self.link.request("alarms_ack", {"code": code}, signed=True)

    def pause(self, ms: int = 120_000) -> dict[str, Any]:
        """Pause alarm audio for `ms` milliseconds."""
        if type(ms) is not int or ms <= 0:
            raise UsageError(f"pause needs a positive whole number of ms, got {ms!r}")
        return self.link.request("alarms_pause", {"ms": ms}, signed=True)

    def alarms_test(self) -> dict[str, Any]:
        """Sound each alarm pattern once on the buzzer and lights."""
        return self.link.request("alarms_test")

    # ---- records --------------------------------------------------------------------------------
    def log_page(self, since: int = 0, max_records: int = LOG_PAGE, ring: str = "events") -> dict[str, Any]:
        """One page of a log ring ("events": therapy, alarms, programming; "refusals": auth
        failures, bad frames, patient refusals, replays, counts): up to `max_records` after
        sequence number `since`, with first_seq, last_seq, corrupt and ring."""
        a: dict[str, Any] = {"since": since, "max": max_records}
        if ring != "events":
            a["ring"] = ring
        return self.link.request("log", a)

    def log(self, since: int = 0, until: Optional[int] = None, progress: ProgressFn = None,
            page: int = LOG_PAGE, ring: str = "events") -> list[dict[str, Any]]:
        """Every record after `since` (up to `until`, default the last), `page` records a
        request; `progress` is told the sequence number reached."""
        got: list[dict[str, Any]] = []
        pos = since
        while until is None or pos < until:
            d = self.log_page(pos, page, ring)
            if until is None:
                until = int(d.get("last_seq", 0))
            recs = d.get("records") or []
            if not recs:
                break
            got.extend(recs)
            pos = recs[-1]["seq"]
            if progress:
                progress(pos)
        return got

    def history(self, days: int = 1, progress: ProgressFn = None) -> list[dict[str, Any]]:
        """Hourly programmed and delivered dose for the last `days` days, up to the current
        hour (none while the clock is not set); `progress` is told the hours done."""
        wall = self.status().get("wall")
        if not wall:
            return []
        now_h = wall[0] * 24 + wall[1] // 3_600_000
        start = now_h - days * 24
        rows: list[dict[str, Any]] = []
        h = start
        while h < now_h:
            to = min(now_h, h + HISTORY_PAGE_H)
            d = self.link.request("history", {"from_hour": h, "to_hour": to})
            for hour, delivered_ng, delivered_nl, programmed_ng in d.get("hours", []):
                rows.append({"hour": hour, "delivered_ug": delivered_ng / 1000, "delivered_ul": delivered_nl / 1000,
                             "programmed_ug": programmed_ng / 1000})
            h = to
            if progress:
                progress(h - start)
        return rows

    # ---- calibration and keys --------------------------------------------------------------------
    def run_volume(self, steps: int, minutes: int) -> dict[str, Any]:
        """Turn the head `steps` steps over `minutes` without dosing (a calibration run)."""
        return self.link.request("run_volume", {"steps": steps, "duration_min": minutes})

    def calibrate(self, pl_per_step: int, force: bool = False, day: Optional[int] = None) -> dict[str, Any]:
        """Store the volume per step (pL) with the day it was measured (default today);
        the calibration wizard is calibrate.run."""
        return self.link.request("calibrate", {"pl_per_step": pl_per_step, "force": bool(force),
                                               "day": wallclock.today() if day is None else day})

    def provision(self) -> dict[str, Any]:
        """New per-device keys for clinician and patient, on the pump and in the keystore."""
        from .keystore import Keystore, generate_keys
        device_id = self.identify()["device_id"]
        keys = generate_keys()
        self.link.request("provision", {"keys": keys}, signed=self.link.signer is not None)
        Keystore().save(device_id, keys)
        return {"device_id": device_id, "provisioned": True}

    # ---- the virtual bench ---------------------------------------------------------------------
    def _bench(self) -> benchctl.Bench:
        if self.bench is None:
            raise BenchError("this pump is a real board, not a virtual bench: no bench control")
        return benchctl.Bench(self.bench)

    def bench_advance(self, duration_ms: int, progress: ProgressFn = None) -> dict[str, Any]:
        """Move a lockstep bench's virtual time forward; returns the bench clock."""
        return self._bench().advance(duration_ms, progress)

    def bench_advance_until(self, until: benchctl.When, cap_ms: int = benchctl.DEFAULT_CAP_MS,
                            progress: ProgressFn = None) -> dict[str, Any]:
        """Advance a lockstep bench until an event (benchctl.EVENTS: low-reservoir, empty,
        refill-due, next-alarm, bolus-end) or a date or datetime of the pump's clock (ISO text,
        UTC unless it names a zone), at most `cap_ms`: benchctl.Bench.advance_until."""
        return self._bench().advance_until(until, cap_ms, progress)

    def bench_show(self) -> dict[str, Any]:
        """The bench's physical truth (outlet, reservoir, head, clock, ...)."""
        return self._bench().show()

    def bench_fault(self, fault: str, on: bool = True, mv: Optional[int] = None) -> dict[str, Any]:
        """Inject (or clear) a bench fault: benchctl.FAULTS."""
        return self._bench().fault(fault, on, mv)

    def bench_control(self, req: dict[str, Any]) -> dict[str, Any]:
        """Any control-channel request."""
        return self._bench().control(req)


def _program(p: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise UsageError(f"a program is a dict (docs/programs.md), got {type(p).__name__}")
    return p


def _given(**kw: Any) -> dict[str, Any]:
    """The arguments that were given (not None)."""
    return {k: v for k, v in kw.items() if v is not None}


def connect(port: Optional[str] = None, bench_dir: Optional[str | Path] = None,
            timeout: float = 5.0, role: str = "clinician") -> Pump:
    """A Pump on a serial `port`, or on the virtual bench in `bench_dir` (default: the one
    started last with `pumpctl bench start`). Commands are signed with `role`'s key from the
    keystore (docs/security.md)."""
    if port:
        link = Link(port, timeout=timeout)
        try:
            link.enable_auth(link.request("identify").get("device_id", ""), role)
        except BaseException:
            link.close()
            raise
        return Pump(link)
    info = benchmod.find(Path(bench_dir) if bench_dir else None)
    link = Link(info.port, timeout=timeout)
    try:
        link.enable_auth(info.d.get("device_id", "SIM-0001"), role)
    except BaseException:
        link.close()
        raise
    return Pump(link, info)


def bench(bench_dir: Optional[str | Path] = None) -> benchctl.Bench:
    """The running virtual bench's control channel, without opening the pump's port."""
    return benchctl.find(bench_dir)


def start_bench(bench_dir: Optional[str | Path] = None, **options: Any) -> benchctl.Bench:
    """Start a virtual bench (options as bench.start) and wait until it answers."""
    return benchctl.start(bench_dir, **options)
