"""Report subcommands of pumpctl: `bolus-usage` (the patient bolus usage per day) and `report`
(the session report, HTML and Markdown with PNG plots). cli.build_parser() calls
register(sub, add) with its subparsers and its `add(parent, name, fn, help)` helper.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable, Optional

from . import report, usage
from .cli_args import connect, opt
from .errors import UsageError
from .output import Out
from .progress import Progress
from .render import table

SHOW_AFTER_S = 1.0  # a progress bar only for a report that takes longer than this


# ---- bolus-usage --------------------------------------------------------------------------------
def usage_text(u: dict[str, Any]) -> str:
    """The usage report as a table for people (data as usage.Usage.as_dict())."""
    days = u.get("days") or []
    src = "counted by the pump" if u.get("source") == "pump" else "counted from the pump's logs"
    if not days:
        lines = [f"No patient bolus was asked for ({src})."]
    else:
        rows = [("-".join(f"{v:02d}" for v in d["date"]) if d.get("date") else "clock not set",
                 *[str(d.get(f, 0)) for f in usage.FIELDS]) for d in days]
        t = u.get("totals") or {}
        rows.append(("total", *[str(t.get(f, 0)) for f in usage.FIELDS]))
        lines = [f"Patient bolus requests per day of the pump's clock ({src}):",
                 table(rows, ("day", "attempts", "delivered", "lockout", "daily limit", "too many", "other")),
                 "lockout: refused inside the lockout interval; daily limit: the allowed number per 24 h "
                 "(or the drug's 24 h maximum) used up; too many: more requests a minute than the pump answers."]
    lines += list(u.get("notes") or [])
    return "\n".join(lines)


def cmd_bolus_usage(args: argparse.Namespace) -> Out:
    if args.days is not None and not 1 <= args.days <= usage.MAX_DAYS:
        raise UsageError(f"--days must be a whole number of days from 1 to {usage.MAX_DAYS}, got {args.days}")
    with connect(args) as pump:
        u = usage.fetch(pump, args.days).as_dict()
    return Out(u, usage_text(u))


# ---- report -------------------------------------------------------------------------------------
class _LateBar:
    """A Progress bar that shows itself only once the work has taken SHOW_AFTER_S."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.start = time.monotonic()
        self.bar: Optional[Progress] = None

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.bar is None and time.monotonic() - self.start >= SHOW_AFTER_S:
            self.bar = Progress(self.total, self.label)
        if self.bar is not None:
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__()


def cmd_report(args: argparse.Namespace) -> Out:
    if args.format not in report.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(report.FORMATS)}, not {args.format!r}")
    if not 1 <= args.days <= 31:
        raise UsageError(f"--days must be a whole number of days from 1 to 31, got {args.days}")
    acc: Optional[Path] = None
    if args.accuracy is not None:
        acc = Path(args.accuracy)
        if not (acc / "summary.csv").is_file():
            raise UsageError(f"--accuracy {acc}: no accuracy results there (summary.csv from `pumpctl accuracy --out`)")
    elif (Path("accuracy") / "summary.csv").is_file():
        acc = Path("accuracy")  # where `pumpctl accuracy` writes by default
    bar = _LateBar(report.STEPS, "writing the report", enabled=not opt(args, "json", False))
    try:
        with connect(args) as pump:
            res = report.build(pump, args.out, args.format, args.days, acc, bar.update)
    finally:
        bar.close()
    data = res.pop("data")
    files = [p for p in (res["html"], res["md"]) if p]
    text = (f"{data['title']}, dated {data['pump_time_text']}.\n"
            f"Wrote {' and '.join(files)}" + (f" with {len(res['plots'])} plots beside it: "
                                             + ", ".join(Path(p).name for p in res["plots"]) if res["plots"] else "")
            + ".\n" + report.DISCLAIMER)
    return Out(res, text)


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    bu = add(sub, "bolus-usage", cmd_bolus_usage,
             "patient bolus requests per day of the pump's clock: delivered, refused by lockout or daily limit")
    bu.add_argument("--days", type=int, default=None,
                    help="only the last N days of the pump's clock, a row for each (default: every day the pump keeps, about 31)")
    rp = add(sub, "report", cmd_report,
             "write a report of the pump's session (HTML and Markdown with PNG plots) to hand in")
    rp.add_argument("--out", default="report", help="folder for the report and its plots (default ./report)")
    rp.add_argument("--format", default="both", choices=report.FORMATS,
                    help="html, md (Markdown) or both (default both)")
    rp.add_argument("--days", type=int, default=1, help="days of hourly history to show, 1 to 31 (default 1)")
    rp.add_argument("--accuracy", metavar="DIR",
                    help="folder of `pumpctl accuracy` results to include (default ./accuracy when it holds results)")
