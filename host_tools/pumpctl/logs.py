"""The event log download with a local cache, so each download fetches only what is new.
Built on api.Pump (the log's pages); the hourly history is api.Pump.history."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from . import paths
from .api import Pump
from .progress import Progress


def _cache_file(device_id: str) -> Path:
    d = paths.state_home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{device_id}.jsonl"


def download(pump: Pump, since: Optional[int] = None, progress: bool = True) -> list[dict[str, Any]]:
    """Records after `since` (default: after the last one this host downloaded before). New
    records are appended to a local cache so the next call fetches only what is new."""
    device_id = pump.identify()["device_id"]
    cache = _cache_file(device_id)
    have: list[dict[str, Any]] = []
    if cache.exists():
        have = [json.loads(l) for l in cache.read_text().splitlines() if l.strip()]
    last_cached = have[-1]["seq"] if have else 0
    start = last_cached if since is None else since
    last = pump.log_page(start, 1).get("last_seq", 0)
    if last < last_cached:
        # The device's log is older than our cache (a new pump under the same id): start over.
        have, last_cached = [], 0
        cache.write_text("")
        if since is None:
            start = 0
    with Progress(max(1, last - start), "downloading log", enabled=progress and last - start > 40) as bar:
        got = pump.log(start, until=last, progress=lambda pos: bar.update(pos - start))
    new = [r for r in got if r["seq"] > last_cached]
    if new:
        with cache.open("a") as f:
            for r in new:
                f.write(json.dumps(r) + "\n")
    return got
