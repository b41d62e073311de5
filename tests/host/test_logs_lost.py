"""`pumpctl log` says how many records the pump no longer has and from when (issue 16)."""
from __future__ import annotations

from pumpctl import logs
from pumpctl.render import wall_text


def _recs(*seqs: int) -> list[dict]:
    return [{"seq": s, "type": "x", "wall": [9800, s * 60_000], "data": {}} for s in seqs]


def test_a_wrapped_ring_and_a_damaged_record_are_both_reported():
    recs = _recs(437, 438, 440)
    spans = logs.lost_spans(recs, first_seq=437, since=0)
    assert [(s["from_seq"], s["to_seq"], s["n"], s["reason"]) for s in spans] == [
        (1, 436, 436, "ring wrapped"), (439, 439, 1, "corrupt")]
    result = {"ring": "events", "records": recs, "lost": spans}
    marked = logs.with_lost(result)
    assert [r["type"] for r in marked] == ["records_lost", "x", "x", "records_lost", "x"]
    text = logs.lost_sentence(result, wall_text)
    assert "436 event log records 1..436 are no longer on the pump (all older than 2026-10-31 07:17:00)" in text
    assert "1 event log record 439 was found damaged" in text


def test_nothing_lost_says_nothing():
    recs = _recs(1, 2, 3)
    assert logs.lost_spans(recs, 1, 0) == []
    assert logs.lost_sentence({"records": recs, "lost": []}, wall_text) == ""
    # a download after the last one seen: nothing before `since` counts as lost
    assert logs.lost_spans(_recs(500, 501), first_seq=437, since=499) == []
