#!/usr/bin/env python3
"""An accuracy experiment: the IEC 60601-2-24 gravimetric test at several rates on a bench whose
true volume per step is off the firmware's calibration, with the trumpet curve of each rate.

    .venv/bin/python examples/accuracy_experiment.py [--true-pl 51500] [--rates 500,2400] [--out accuracy-exp]

Each rate gets a fresh private lockstep bench (so start-up is seen from rest) and takes about a
second of wall time for two hours of bench time.
Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _benchutil import pump_on_bench
from pumpctl import accuracy, plots
from pumpctl.cli_lab import run_accuracy, write_samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--true-pl", type=int, default=51_500, help="true volume per step on the bench, pL")
    ap.add_argument("--nominal-pl", type=int, default=50_000, help="the firmware's calibration, pL per step")
    ap.add_argument("--rates", default="500,2400", help="water rates to test, µg/day = µL/day, comma separated")
    ap.add_argument("--duration-h", type=int, default=2, help="hours per rate (default 2)")
    ap.add_argument("--out", default="accuracy-exp", help="output directory")
    a = ap.parse_args()
    try:
        rates = [int(r) for r in a.rates.split(",")]
    except ValueError:
        ap.error("--rates must be whole numbers separated by commas")
    if a.duration_h < 2 or any(r <= 0 for r in rates):
        ap.error("need rates > 0 and at least 2 hours")
    rho = accuracy.water_density_g_per_ml(20.0)
    out = Path(a.out)
    print(f"bench: true {a.true_pl} pL/step, firmware calibrated at {a.nominal_pl} pL/step "
          f"(expected error {100 * (a.true_pl - a.nominal_pl) / a.nominal_pl:+.2f} %)")
    print("rate µL/day  overall %   2-min window     31-min window")
    for rate in rates:
        with pump_on_bench(true_pl=a.true_pl, nominal_pl=a.nominal_pl) as pump:
            samples, rate_ml_h = run_accuracy(pump, rate, 1000, "water", a.duration_h * 3_600_000, rho)
        res = accuracy.analyse(samples, rate_ml_h, rho)
        d = out / f"rate-{rate}"
        accuracy.write_csv(res, d)
        write_samples(samples, d / "samples.csv")
        plots.trumpet_curve(res.trumpet, res.overall_error_pct, d / "trumpet.png",
                            title=f"Trumpet curve at {rate} µL/day")
        plots.startup_curve(res.startup, rate_ml_h, d / "startup.png")
        t2, t31 = res.trumpet[0], res.trumpet[-1]
        print(f"{rate:11}  {res.overall_error_pct:+8.2f}   {t2.min_error_pct:+6.1f}..{t2.max_error_pct:+5.1f}   "
              f"{t31.min_error_pct:+6.2f}..{t31.max_error_pct:+5.2f}")
    print("files in", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
