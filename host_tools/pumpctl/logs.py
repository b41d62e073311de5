"""Event log and therapy history downloads: only what is new, with a progress bar."""
from __future__ import annotations

import json
from typing import Any, Optional

from . import paths
from .link import Link
from .progress import Progress


def _cache_file(device_id: str):
    d = paths.state_home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{device_id}.jsonl"


def download(link: Link, since: Optional[int] = None, progress: bool = True) -> list[dict[str, Any]]:
    """Records after `since` (default: after the last one this host downloaded before). New
    records are appended to a local cache so the next call fetches only what is new."""
    device_id = link.request("identify")["device_id"]
    cache = _cache_file(device_id)
    have: list[dict[str, Any]] = []
    if cache.exists():
        have = [json.loads(l) for l in cache.read_text().splitlines() if l.strip()]
    last_cached = have[-1]["seq"] if have else 0
    start = last_cached if since is None else since
    first = link.request("log", {"since": start, "max": 1})
    last = first.get("last_seq", 0)
    if last < last_cached:
        # The device's log is older than our cache (a new pump under the same id): start over.
        have, last_cached = [], 0
        cache.write_text("")
        if since is None:
            start = 0
    got: list[dict[str, Any]] = []
    pos = start
    with Progress(max(1, last - start), "downloading log", enabled=progress and last - start > 40) as bar:
        while pos < last:
            d = link.request("log", {"since": pos, "max": 40})
            recs = d.get("records") or []
            if not recs:
                break
            got.extend(recs)
            pos = recs[-1]["seq"]
            bar.update(pos - start)
    new = [r for r in got if r["seq"] > last_cached]
    if new:
        with cache.open("a") as f:
            for r in new:
                f.write(json.dumps(r) + "\n")
    return got


def history(link: Link, status: dict[str, Any], days: int) -> list[dict[str, Any]]:
    """Hourly programmed and delivered dose for the last `days` days (up to the current hour)."""
    wall = status.get("wall")
    if not wall:
        return []
    now_h = wall[0] * 24 + wall[1] // 3_600_000
    start = now_h - days * 24
    rows: list[dict[str, Any]] = []
    h = start
    with Progress(now_h - start, "downloading history", enabled=days > 2) as bar:
        while h < now_h:
            to = min(now_h, h + 48)
            d = link.request("history", {"from_hour": h, "to_hour": to})
            for hour, ng, nl, png in d.get("hours", []):
                rows.append({"hour": hour, "delivered_ug": ng / 1000, "delivered_ul": nl / 1000, "programmed_ug": png / 1000})
            h = to
            bar.update(h - start)
    return rows
