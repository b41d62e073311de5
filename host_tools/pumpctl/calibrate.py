"""The calibration wizard: pump a chosen volume, weigh it, store the volume per motor step."""
from __future__ import annotations

import argparse
import time
from typing import Any, Optional

from . import bench
from .accuracy import water_density_g_per_ml
from .errors import UsageError
from .link import Link
from .progress import Progress


def _scale_mg(info: Optional[bench.BenchInfo]) -> Optional[float]:
    if info is None:
        return None
    d = bench.control(info, {"cmd": "show"})
    if "scale_ug" in d:
        return d["scale_ug"] / 1000
    return d["outlet_nl"] / 1000  # µL of water ~ mg


def calibrate(link: Link, args: argparse.Namespace, bench_info: Optional[bench.BenchInfo]) -> dict[str, Any]:
    if args.volume_ul <= 0 or args.volume_ul > 5000:
        raise UsageError("calibration volume must be 1..5000 µL")
    if not 0 <= args.temperature <= 40:
        raise UsageError("water temperature must be 0..40 °C")
    st = link.request("status")
    if st["state"] == "running":
        raise UsageError("stop therapy first (pumpctl stop): calibration moves the head without dosing")
    old_pl = st["pl_per_step"]
    steps = round(args.volume_ul * 1_000_000 / old_pl)
    runs = []
    rho = water_density_g_per_ml(args.temperature)
    for minutes in (args.minutes or [10]):
        if not 1 <= minutes <= 240:
            raise UsageError("each calibration run takes 1..240 minutes")
        before = _scale_mg(bench_info)
        link.request("run_volume", {"steps": steps, "duration_min": minutes})
        total_ms = (minutes + 1) * 60_000
        if bench_info is not None and bench_info.mode == "lockstep":
            bench.control(bench_info, {"cmd": "advance", "ms": total_ms})
        else:
            # A board (or a bench in real time): the pump says when the run is done. Its clock
            # may run faster than ours (an emulated Pico sped up), so ask rather than wait.
            with Progress(steps, f"pumping ({minutes} min run)", enabled=not args.json) as bar:
                t0 = time.monotonic()
                while (time.monotonic() - t0) * 1000 < total_ms * 2:
                    time.sleep(1.0)
                    left = link.request("status").get("priming_steps_left", 0)
                    bar.update(steps - left)
                    if left == 0:
                        break
                else:
                    raise UsageError("the calibration run did not finish in twice its time: check the pump's alarms")
        mass = args.mass_mg
        if mass is None:
            after = _scale_mg(bench_info)
            if after is not None and before is not None:
                mass = after - before
            else:
                ans = input(f"Weigh the water pumped ({args.volume_ul} µL expected). Mass in mg: ")
                try:
                    mass = float(ans)
                except ValueError:
                    raise UsageError(f"not a mass: {ans!r}") from None
        if mass <= 0:
            raise UsageError(f"a measured mass of {mass} mg is not a calibration: check the scale and the tubing")
        volume_ul = mass / rho  # mg / (g/mL) = µL
        runs.append({"minutes": minutes, "ul_per_h": volume_ul * 60 / minutes, "mass_mg": mass, "volume_ul": volume_ul,
                     "pl_per_step": volume_ul * 1_000_000 / steps})
    pl = round(sum(r["pl_per_step"] for r in runs) / len(runs))
    import datetime as dt
    day = (dt.datetime.now(dt.timezone.utc) - dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)).days
    link.request("calibrate", {"pl_per_step": pl, "force": bool(args.force), "day": day})
    err = (pl - old_pl) / old_pl * 100
    lines = [f"Run {i + 1}: {r['minutes']} min ({r['ul_per_h']:.0f} µL/h): weighed {r['mass_mg']:.1f} mg = "
             f"{r['volume_ul']:.1f} µL -> {r['pl_per_step'] / 1000:.3f} nL/step" for i, r in enumerate(runs)]
    lines.append(f"Water density at {args.temperature:.1f} °C: {rho:.5f} g/mL. {steps} steps per run.")
    lines.append(f"Calibration: {pl / 1000:.3f} nL per step (was {old_pl / 1000:.3f}, {err:+.2f} %), "
                 f"stored on the pump with today's date.")
    last = runs[-1]
    return {"steps": steps, "mass_mg": last["mass_mg"], "density_g_per_ml": rho, "volume_ul": last["volume_ul"],
            "pl_per_step": pl, "was_pl_per_step": old_pl, "change_percent": err, "runs": runs, "day": day,
            "text": "\n".join(lines)}
