"""The calibration wizard: pump a chosen volume, weigh it, store the volume per motor step.
Built on api.Pump; the bench's scale is read when the pump is a virtual bench."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

from . import wallclock
from .accuracy import water_density_g_per_ml
from .api import Pump
from .errors import UsageError
from .progress import Progress


def _scale_mg(pump: Pump) -> Optional[float]:
    if pump.bench is None:
        return None
    d = pump.bench_show()
    if "scale_ug" in d:
        return float(d["scale_ug"]) / 1000
    return float(d["outlet_nl"]) / 1000  # µL of water ~ mg


def run(pump: Pump, volume_ul: int = 500, minutes: Optional[Sequence[int]] = None,
        mass_mg: Optional[float] = None, temperature: float = 20.0, force: bool = False,
        show_progress: bool = True, ask: Callable[[str], str] = input) -> dict[str, Any]:
    """One calibration run per entry of `minutes` (default one of 10 min); the mean volume per
    step is stored on the pump. The mass is `mass_mg`, else the bench scale, else `ask`ed."""
    if volume_ul <= 0 or volume_ul > 5000:
        raise UsageError("calibration volume must be 1..5000 µL")
    if not 0 <= temperature <= 40:
        raise UsageError("water temperature must be 0..40 °C")
    st = pump.status()
    if st["state"] == "running":
        raise UsageError("stop therapy first (pumpctl stop): calibration moves the head without dosing")
    old_pl = st["pl_per_step"]
    steps = round(volume_ul * 1_000_000 / old_pl)
    runs = []
    rho = water_density_g_per_ml(temperature)
    for run_min in (minutes or [10]):
        if not 1 <= run_min <= 240:
            raise UsageError("each calibration run takes 1..240 minutes")
        before = _scale_mg(pump)
        pump.run_volume(steps, run_min)
        total_ms = (run_min + 1) * 60_000
        if pump.bench is not None and pump.bench.mode == "lockstep":
            pump.bench_advance(total_ms)
        else:
            # A board (or a bench in real time): the pump says when the run is done. Its clock
            # may run faster than ours (an emulated Pico sped up), so ask rather than wait.
            with Progress(steps, f"pumping ({run_min} min run)", enabled=show_progress) as bar:
                t0 = time.monotonic()
                while (time.monotonic() - t0) * 1000 < total_ms * 2:
                    time.sleep(1.0)
                    left = pump.status().get("priming_steps_left", 0)
                    bar.update(steps - left)
                    if left == 0:
                        break
                else:
                    raise UsageError("the calibration run did not finish in twice its time: check the pump's alarms")
        mass = mass_mg
        if mass is None:
            after = _scale_mg(pump)
            if after is not None and before is not None:
                mass = after - before
            else:
                ans = ask(f"Weigh the water pumped ({volume_ul} µL expected). Mass in mg: ")
                try:
                    mass = float(ans)
                except ValueError:
                    raise UsageError(f"not a mass: {ans!r}") from None
        if mass <= 0:
            raise UsageError(f"a measured mass of {mass} mg is not a calibration: check the scale and the tubing")
        measured_ul = mass / rho  # mg / (g/mL) = µL
        runs.append({"minutes": run_min, "ul_per_h": measured_ul * 60 / run_min, "mass_mg": mass,
                     "volume_ul": measured_ul, "pl_per_step": measured_ul * 1_000_000 / steps})
    pl = round(sum(r["pl_per_step"] for r in runs) / len(runs))
    day = wallclock.today()
    pump.calibrate(pl, force=force, day=day)
    err = (pl - old_pl) / old_pl * 100
    last = runs[-1]
    return {"steps": steps, "mass_mg": last["mass_mg"], "density_g_per_ml": rho, "volume_ul": last["volume_ul"],
            "pl_per_step": pl, "was_pl_per_step": old_pl, "change_percent": err, "runs": runs, "day": day}
