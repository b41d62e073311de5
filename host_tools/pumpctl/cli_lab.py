"""Lab subcommands of pumpctl: `watch`, `accuracy` and `plot`. cli.build_parser() calls
register(sub, add) with its subparsers and its `add(parent, name, fn, help)` helper.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import time
from pathlib import Path
from typing import Any, Callable, Optional

from . import accuracy, api, programs, watch
from .cli_args import connect, duration_arg, opt
from .durations import format_ms
from .errors import BenchError, UsageError
from .output import Out
from .progress import Progress
from .render import nonneg_zero

SAMPLE_MS = 30_000


def _plots() -> Any:
    # matplotlib takes about half a second to import: only the commands that draw pay for it.
    from . import plots
    return plots


def _out(data: Any, text: str) -> Any:
    return Out(data, text)


# ---- watch ------------------------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace) -> Any:
    if not args.interval > 0:
        raise UsageError(f"--interval must be a positive number of seconds, got {args.interval}")
    with connect(args) as pump:
        def fetch() -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
            st = pump.status()
            show = pump.bench_show() if pump.bench is not None else None
            return st, show

        if args.once or opt(args, "json", False):
            st, show = fetch()
            return _out({"status": st, "bench": show}, watch.render(st, show, colour=False))
        try:
            watch.run(fetch, interval=args.interval)
        except KeyboardInterrupt:
            pass
    return _out({}, "")


# ---- accuracy ---------------------------------------------------------------------------------
def _scale_mg(show: dict[str, Any], density: float) -> float:
    """The outlet scale in mg: the bench's scale_ug when it has one, else its outlet volume
    weighed at the given density (an ideal scale)."""
    if show.get("scale_ug") is not None:
        return float(show["scale_ug"]) / 1000.0
    return float(show["outlet_nl"]) * density / 1000.0


def _speed(mode: str) -> Optional[int]:
    """None for a lockstep bench, else its speed factor."""
    if mode == "lockstep":
        return None
    digits = "".join(c for c in mode if c.isdigit())
    return int(digits) if digits else 1


def run_accuracy(pump: api.Pump, rate_ug_per_day: int, concentration: int, drug: str, duration_ms: int,
                 density: float, progress: Optional[Callable[[int], None]] = None,
                 program: bool = True) -> tuple[list[tuple[float, float]], float]:
    """Program the rate, sample the bench's scale every 30 s for `duration_ms`; returns the
    samples (t_s, mass_mg, tared at the first) and the programmed rate in mL/h."""
    if pump.bench is None:
        raise BenchError("the accuracy test reads the virtual bench's outlet scale: run it on a bench "
                         "(a board's load cell is not read over the link yet)")
    show = pump.bench_show()
    speed = _speed(str(show.get("mode", "lockstep")))
    if program:
        pump.program_continuous(rate_ug_per_day, concentration, drug, confirm=True)
    rate_ml_h = rate_ug_per_day / concentration / 24.0
    tare = _scale_mg(pump.bench_show(), density)
    samples = [(0.0, 0.0)]
    n = duration_ms // SAMPLE_MS
    start = time.monotonic()
    for k in range(1, n + 1):
        if speed is None:
            pump.bench_advance(SAMPLE_MS)
        else:
            # Real time (or N x): wait for the next 30 s mark of bench time.
            wait = start + k * SAMPLE_MS / 1000.0 / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        samples.append((k * SAMPLE_MS / 1000.0, _scale_mg(pump.bench_show(), density) - tare))
        if progress:
            progress(k)
    return samples, rate_ml_h


def write_samples(samples: list[tuple[float, float]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "mass_mg"])
        for t, m in samples:
            w.writerow([f"{t:g}", f"{m:.4f}"])
    return path


def cmd_accuracy(args: argparse.Namespace) -> Any:
    duration = duration_arg(args.duration)
    if duration < 62 * 60_000:
        raise UsageError("the accuracy test needs at least 62 min (the 31 min window twice); the standard's is 2h")
    if duration % SAMPLE_MS:
        raise UsageError("the duration must be a whole number of 30 s samples")
    if args.rate <= 0 or args.concentration <= 0:
        raise UsageError("--rate and --concentration must be positive")
    try:
        density = accuracy.water_density_g_per_ml(args.temperature)
    except accuracy.AccuracyError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    n = duration // SAMPLE_MS
    with connect(args) as pump:
        with Progress(n, f"accuracy test, {format_ms(duration)} of bench time",
                      enabled=not opt(args, "json", False)) as bar:
            samples, rate_ml_h = run_accuracy(pump, args.rate, args.concentration, args.drug, duration,
                                              density, bar.update)
    try:
        res = accuracy.analyse(samples, rate_ml_h, density)
    except accuracy.AccuracyError as e:
        raise UsageError(f"the samples cannot be analysed: {e}") from None
    files = {k: str(v) for k, v in accuracy.write_csv(res, out).items()}
    files["samples"] = str(write_samples(samples, out / "samples.csv"))
    plots = _plots()
    files["trumpet_png"] = str(plots.trumpet_curve(res.trumpet, res.overall_error_pct, out / "trumpet.png",
                                                   title=f"Trumpet curve at {rate_ml_h * 1000:.3g} µL/h (IEC 60601-2-24)"))
    files["startup_png"] = str(plots.startup_curve(res.startup, rate_ml_h, out / "startup.png"))
    data = {"rate_ug_per_day": args.rate, "concentration_ug_per_ml": args.concentration, "drug": args.drug,
            "rate_ml_h": rate_ml_h, "density_g_ml": density, "duration_ms": duration,
            "analysis_s": [res.analysis_start_s, res.analysis_end_s],
            "overall_error_pct": res.overall_error_pct, "mean_flow_ml_h": res.mean_flow_ml_h,
            "trumpet": [{"window_min": t.window_min, "max_error_pct": t.max_error_pct,
                         "min_error_pct": t.min_error_pct} for t in res.trumpet],
            "files": files}
    rows = "\n".join(f"  {t.window_min:>2} min: {nonneg_zero(t.min_error_pct):+7.2f} % .. {nonneg_zero(t.max_error_pct):+7.2f} %" for t in res.trumpet)
    text = (f"Programmed {args.rate} µg/day of {args.drug} at {args.concentration} µg/mL = {rate_ml_h * 1000:.4g} µL/h.\n"
            f"Overall error over {res.analysis_start_s / 60:.0f}..{res.analysis_end_s / 60:.0f} min: "
            f"{nonneg_zero(res.overall_error_pct):+.2f} % (mean flow {res.mean_flow_ml_h * 1000:.4g} µL/h).\n"
            f"Trumpet curve (min .. max error per observation window):\n{rows}\n"
            f"Files in {out}: samples.csv, startup.csv, trumpet.csv, summary.csv, trumpet.png, startup.png.\n"
            "The pump is still running the test program.")
    return _out(data, text)


# ---- plots ------------------------------------------------------------------------------------
def cmd_plot_profile(args: argparse.Namespace) -> Any:
    plots = _plots()
    prog = programs.load(args.file)
    p = plots.dose_profile(prog, args.out)
    total = sum(plots.hourly_dose_ug(prog))
    return _out({"png": str(p), "daily_total_ug": total}, f"Wrote {p} ({total:.1f} µg/day).")


def cmd_plot_reservoir(args: argparse.Namespace) -> Any:
    try:
        refill = dt.datetime.fromisoformat(args.refill) if args.refill else None
    except ValueError:
        raise UsageError(f"--refill {args.refill!r} is not a date like 2026-03-01") from None
    with connect(args) as pump:
        st = pump.status()
        prog = pump.program_show().get("program") if st.get("state") == "running" else None
    fc = st.get("forecast") or {}
    if fc.get("daily_ul_worst") is not None:
        ul_day = float(fc["daily_ul_worst"])  # the pump's own forecast, boluses included
    elif prog:
        ul_day = float(programs.summary(prog, int(st["reservoir_ul"]))["daily_volume_ul"])
    else:
        ul_day = 0.0
    pl = _plots()  # the drawdown starts at the pump's clock, not this computer's
    p = pl.reservoir_projection(float(st["reservoir_ul"]), ul_day, args.out, start=pl.pump_datetime(st.get("wall")),
                                low_ul=float(st.get("low_reservoir_ul", 2000)), refill=refill)
    return _out({"png": str(p), "reservoir_ul": st["reservoir_ul"], "ul_per_day": ul_day},
                f"Wrote {p}: {st['reservoir_ul']} µL at {ul_day:.1f} µL/day.")


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    w = add(sub, "watch", cmd_watch, "live view of the pump (and bench): state, rate, reservoir, alarms")
    w.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    w.add_argument("--once", action="store_true", help="print one screen and exit")

    a = add(sub, "accuracy", cmd_accuracy,
            "IEC 60601-2-24 gravimetric accuracy test on the bench: trumpet and start-up curves")
    a.add_argument("--rate", type=int, required=True, help="dose rate to test, µg/day (as `program continuous`)")
    a.add_argument("--duration", default="2h", help="test length (default 2h: second hour analysed)")
    a.add_argument("--concentration", type=int, default=1000, help="µg/mL (default 1000: water, 1 µg = 1 µL)")
    a.add_argument("--drug", default="water", help="library entry to program (default water)")
    a.add_argument("--temperature", type=float, default=20.0, help="water temperature °C for its density (default 20)")
    a.add_argument("--out", default="accuracy", help="directory for CSV and PNG files (default ./accuracy)")

    pl = sub.add_parser("plot", help="PNG plots of programs and the reservoir")
    psub = pl.add_subparsers(dest="plot_command", metavar="WHAT")
    pp = add(psub, "profile", cmd_plot_profile, "a program file's 24 h dose profile")
    pp.add_argument("file", help="program file (TOML, docs/programs.md)")
    pp.add_argument("--out", required=True, help="PNG to write")
    pr = add(psub, "reservoir", cmd_plot_reservoir, "reservoir projection with low-reservoir and refill dates")
    pr.add_argument("--out", required=True, help="PNG to write")
    pr.add_argument("--refill", help="planned refill date, e.g. 2026-03-01")
