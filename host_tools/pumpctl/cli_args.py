"""What every pumpctl command module shares: the parsed arguments to an api.Pump or a bench,
and a duration argument read as one sentence when it is wrong."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Optional

from . import api, benchctl
from .durations import parse_ms
from .errors import UsageError


def opt(args: argparse.Namespace, name: str, default: Any) -> Any:
    """An argument that a parser may not define (the lab and Pico parsers add fewer)."""
    v = getattr(args, name, None)
    return default if v is None else v


def connect(args: argparse.Namespace, role: Optional[str] = None) -> api.Pump:
    """The pump named by --port (or --pico), else the virtual bench in --bench-dir (default:
    the one started last), its commands signed with `role`'s key (default --role)."""
    return api.connect(port=opt(args, "port", None), bench_dir=opt(args, "bench_dir", None),
                       timeout=opt(args, "timeout", 5.0), role=role or opt(args, "role", "clinician"))


def bench(args: argparse.Namespace) -> benchctl.Bench:
    return api.bench(opt(args, "bench_dir", None))


def duration_arg(text: str) -> int:
    try:
        return parse_ms(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def whole(unit: str, minimum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: a whole number in `unit`, refused as one sentence in that unit."""
    of, after = (f" of {unit}", f" {unit}") if unit else ("", "")

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number{of}, not {text!r}") from None
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum}{after} or more, not {v}")
        return v
    parse.__name__ = f"whole number{of}"
    return parse

