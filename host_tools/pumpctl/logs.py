"""Log download with a local cache per ring, so each download fetches only what is new, and an
account of records the pump no longer has. Built on api.Pump.log_page; the hourly history is
api.Pump.history.

The pump keeps two rings (issue 16): "events" (therapy, alarms, programming, provisioning, power,
clinician refusals) and "refusals" (auth failures, bad frames, patient refusals, cached replays,
rate-limit counts). Each has its own sequence numbers from 1. Records are lost when a ring wraps
(first_seq > 1: records 1..first_seq-1 are gone, all older than the oldest kept) or when a
record is found corrupt (a gap in seq; the reply's `corrupt` counts them)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from . import paths
from .api import LOG_PAGE, Pump
from .errors import UsageError
from .progress import Progress

RINGS = ("events", "refusals")


def _cache_file(device_id: str, ring: str = "events") -> Path:
    d = paths.state_home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    # The events ring keeps the name it had before there were two rings.
    return d / (f"{device_id}.jsonl" if ring == "events" else f"{device_id}.{ring}.jsonl")


def _read_cache(cache: Path) -> list[dict[str, Any]]:
    have: list[dict[str, Any]] = []
    if cache.exists():
        for line in cache.read_text(errors="replace").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a torn last line (killed mid-write): the record is fetched again
            if isinstance(r, dict) and isinstance(r.get("seq"), int):
                have.append(r)
    return have


def lost_spans(recs: list[dict[str, Any]], first_seq: int, since: int) -> list[dict[str, Any]]:
    """Runs of sequence numbers the pump no longer has, among those after `since`:
    {"from_seq", "to_seq", "n", "reason", "after", "before"} where after/before are the wall
    times ([y, m, d, h, min, s] or None) of the kept neighbours (after is None: older than
    the oldest kept record)."""
    out: list[dict[str, Any]] = []
    if first_seq > 1 and since + 1 < first_seq:
        oldest = recs[0] if recs and recs[0]["seq"] == first_seq else None
        out.append({"from_seq": since + 1, "to_seq": first_seq - 1, "n": first_seq - 1 - since,
                    "reason": "ring wrapped", "after": None,
                    "before": oldest.get("wall") if oldest else None})
    for a, b in zip(recs, recs[1:]):
        if b["seq"] > a["seq"] + 1:
            out.append({"from_seq": a["seq"] + 1, "to_seq": b["seq"] - 1, "n": b["seq"] - a["seq"] - 1,
                        "reason": "corrupt", "after": a.get("wall"), "before": b.get("wall")})
    return out


def fetch(pump: Pump, since: Optional[int] = None, ring: str = "events",
          progress: bool = True) -> dict[str, Any]:
    """Records of `ring` after `since` (default: after the last one this host downloaded
    before), with what was lost: {"ring", "records", "first_seq", "last_seq", "corrupt",
    "lost": [lost_spans], "lost_total"}. New records are appended to the ring's local cache."""
    if ring not in RINGS:
        raise UsageError(f"log ring must be one of {', '.join(RINGS)}, not {ring!r}")
    device_id = pump.identify()["device_id"]
    cache = _cache_file(device_id, ring)
    have = _read_cache(cache)
    last_cached = have[-1]["seq"] if have else 0
    start = last_cached if since is None else max(0, since)
    head = pump.log_page(start, 1, ring)
    last = int(head.get("last_seq", 0) or 0)
    if last < last_cached:
        # The device's ring is older than our cache (a new pump under the same id): start over.
        have, last_cached = [], 0
        cache.write_text("")
        if since is None:
            start = 0
    got: list[dict[str, Any]] = []
    first_seq = int(head.get("first_seq", 1) or 1)
    corrupt = int(head.get("corrupt", 0) or 0)
    pos = start
    with Progress(max(1, last - start), f"downloading {ring} log", enabled=progress and last - start > 40) as bar:
        while pos < last:
            d = pump.log_page(pos, LOG_PAGE, ring)
            first_seq = int(d.get("first_seq", first_seq) or first_seq)
            corrupt = max(corrupt, int(d.get("corrupt", 0) or 0))
            recs = [r for r in d.get("records") or [] if r.get("seq", 0) > pos]
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
    lost = lost_spans(got, first_seq, start) if last > start else []
    return {"ring": ring, "records": got, "first_seq": first_seq, "last_seq": last, "corrupt": corrupt,
            "lost": lost, "lost_total": sum(s["n"] for s in lost)}


def download(pump: Pump, since: Optional[int] = None, progress: bool = True,
             ring: str = "events") -> list[dict[str, Any]]:
    """The records only (see fetch for what was lost)."""
    return fetch(pump, since, ring, progress)["records"]


def with_lost(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The records with a marker {"seq": None, "type": "records_lost", "data": span} where
    records are missing, so a list read alone (`pumpctl log --json`) still says what is gone."""
    spans = sorted(result.get("lost") or [], key=lambda s: s["from_seq"])
    out: list[dict[str, Any]] = []
    i = 0
    for r in result.get("records") or []:
        while i < len(spans) and spans[i]["from_seq"] < r["seq"]:
            out.append({"seq": None, "wall": spans[i].get("before"), "type": "records_lost", "data": spans[i]})
            i += 1
        out.append(r)
    for s in spans[i:]:
        out.append({"seq": None, "wall": s.get("before"), "type": "records_lost", "data": s})
    return out


def lost_sentence(result: dict[str, Any], wall_text: Any) -> str:
    """One sentence per run of lost records for people ('' when none): how many and from when."""
    lines = []
    name = "event log" if result.get("ring", "events") == "events" else "refusals log"
    for s in result.get("lost") or []:
        seqs = f"records {s['from_seq']}..{s['to_seq']}" if s["n"] > 1 else f"record {s['from_seq']}"
        if s["reason"] == "ring wrapped":
            when = f"all older than {wall_text(s['before'])}" if s.get("before") else "the oldest ones"
            verb = "are" if s["n"] > 1 else "is"
            lines.append(f"{s['n']} {name} {seqs} {verb} no longer on the pump ({when}): its log ring wrapped.")
        else:
            verb = "were" if s["n"] > 1 else "was"
            lines.append(f"{s['n']} {name} {seqs} {verb} found damaged and skipped (between "
                         f"{wall_text(s.get('after'))} and {wall_text(s.get('before'))}).")
    return "\n".join(lines)
