#!/usr/bin/env python3
"""Seeded fuzzer for the programmer link: the real firmware on the real MicroPython interpreter,
reached through the virtual bench's serial port (a pseudo-terminal), exactly as a hostile or
buggy host program would reach it.

It starts its own lockstep bench in a temporary directory (PUMPCTL_HOME pointing at a temporary
directory too), programs a continuous therapy, lets it run one virtual hour, records the program,
the reservoir and delivered figures, the bench's physical truth and (when the firmware has a
`log` command) the last log sequence number; then it writes N generated frames in batches
without waiting for each reply, draining replies all the time so the pty never fills. Every K
frames it sends a valid `status` request and requires a correct reply. No virtual time passes
while fuzzing, so afterwards nothing that therapy owns may have changed at all.

    python tests/fuzz/fuzz_link.py --seed 1 --frames 100000 --batch 64

Exits 0 when every check passed, 1 otherwise (the seed to reproduce is printed either way).
Research and education prototype; never for human use.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import select
import shutil
import sys
import tempfile
import time
import tty
import zlib
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "host_tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import bench as benchmod  # noqa: E402
from pumpctl import frames  # noqa: E402

MAX_FRAME = frames.MAX_FRAME  # 4096 bytes, '$' to '\n'
SEQ_MAX = (1 << 30) - 1

# Categories always sent: none of them may change therapy, whatever the firmware's auth state.
BASE_CATEGORIES = (
    "random_bytes", "mutated", "truncated", "oversized", "bad_crc", "wrong_types",
    "huge_numbers", "deep_nesting", "unknown_cmd", "absurd_program", "valid_read",
)
# Sent only when the device refuses an unsigned `stop`: these are valid therapy commands
# without a MAC (or with a wrong one) and would legitimately change therapy if accepted.
THERAPY_CATEGORY = "therapy_unsigned"
# Sent when the bench handed its keys to PUMPCTL_HOME: correctly signed (clinician) frames
# whose content is hostile (absurd programs, wrong argument types, huge numbers, deep nesting),
# so the validators behind authentication are fuzzed too. None of them is a valid change.
SIGNED_CATEGORY = "signed_hostile"

KNOWN_COMMANDS = ("identify", "hello", "status", "program_set", "program_check", "program_show",
                  "stop", "resume", "time_set", "alarms", "alarms_ack", "alarms_pause", "drugs",
                  "log", "patient_bolus", "bolus", "refill", "provision", "history")
# Replies that mean a firmware bug (docs/protocol.md): a crash in a handler, a link restart.
BUG_CODES = ("INTERNAL", "LINK_RESET")
# Status fields that only therapy (time passing) may change.
STATUS_FIELDS = ("state", "stop_reason", "reservoir_ul", "reservoir_nl", "reservoir_model_ml",
                 "delivered_ul", "delivered_nl", "delivered_steps", "delivered_ug",
                 "rate_ug_per_day", "concentration_ug_per_ml", "drug", "mode", "bolus",
                 "pl_per_step", "uptime_s", "clock_set", "wall")
# Log entry types that would mean therapy or settings changed (refusals are expected).
THERAPY_LOG = re.compile(r"program|stop|resume|time_set|clock|bolus|refill|prime|bridge|calib|provision|deliver")

THERAPY_PROGRAM = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                   "rate_ug_per_day": 500}


class FuzzFailure(Exception):
    pass


# ---- frame generation ------------------------------------------------------------------------
def crc_frame(inner: bytes) -> bytes:
    return b"$" + inner + b"*" + b"%08x" % (zlib.crc32(inner) & 0xFFFFFFFF) + b"\n"


def jbody(obj: Any) -> bytes:
    # json.dumps writes NaN/Infinity for float specials; allow_nan keeps that (not JSON!).
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class Generator:
    """Frame i of a run depends only on the seed, i and whether therapy commands are in."""

    def __init__(self, seed: int, therapy: bool, signer: Optional["Signer"] = None) -> None:
        self.rng = random.Random(seed)
        self.signer = signer
        # Wrong MACs lock authentication (by design) and a locked device refuses every signed
        # frame before validating it: so the first half of a campaign sends none, letting the
        # signed hostile frames reach the validators; the run turns them on halfway.
        self.bad_macs = False
        self.cats = (list(BASE_CATEGORIES) + ([THERAPY_CATEGORY] if therapy else []) +
                     ([SIGNED_CATEGORY] if signer is not None else []))
        # Weights: the parser-level categories most, structured ones fewer each.
        w = {"random_bytes": 14, "mutated": 16, "truncated": 8, "oversized": 3, "bad_crc": 8,
             "wrong_types": 14, "huge_numbers": 10, "deep_nesting": 4, "unknown_cmd": 8,
             "absurd_program": 8, "valid_read": 3, THERAPY_CATEGORY: 8, SIGNED_CATEGORY: 10}
        self.weights = [w[c] for c in self.cats]
        self.therapy = therapy

    def seq(self) -> int:
        return self.rng.randrange(0, SEQ_MAX + 1)

    def next(self) -> tuple[str, bytes, Optional[int]]:
        """(category, bytes, sequence number if the frame carries a valid one)."""
        cat = self.rng.choices(self.cats, self.weights)[0]
        data, seq = getattr(self, "g_" + cat)()
        return cat, data, seq

    # -- building blocks
    def valid_obj(self) -> dict:
        r = self.rng
        # Without auth, stop/resume/program_set/time_set would really run (a swapped pair of
        # equal bytes, an upper-case CRC, ... leave a frame valid): only when they are refused.
        c = r.choice(("status", "identify", "program_show", "alarms", "drugs", "program_check",
                      "alarms_pause", "alarms_ack") +
                     (("time_set", "stop", "resume", "program_set") if self.therapy else ()))
        o: dict[str, Any] = {"s": self.seq(), "c": c}
        if c in ("program_check", "program_set"):
            o["a"] = {"program": dict(THERAPY_PROGRAM, rate_ug_per_day=r.randrange(1, 900))}
        elif c == "time_set":
            o["a"] = {"day": r.randrange(0, 10000), "ms": r.randrange(0, 86_400_000)}
        elif c == "alarms_pause":
            o["a"] = {"ms": r.randrange(1, 900_001)}
        elif c == "alarms_ack":
            o["a"] = {"code": "all"}
        return o

    def junk_value(self, depth: int = 0) -> Any:
        r = self.rng
        k = r.randrange(14 if depth < 2 else 10)
        return [lambda: r.randrange(-10 ** 6, 10 ** 6), lambda: 10 ** 40, lambda: -10 ** 40,
                lambda: 1e308, lambda: r.random() * 1000, lambda: "NaN", lambda: "",
                lambda: None, lambda: r.choice((True, False)), lambda: "x" * r.randrange(300),
                lambda: [self.junk_value(depth + 1) for _ in range(r.randrange(4))],
                lambda: {"k%d" % i: self.junk_value(depth + 1) for i in range(r.randrange(4))},
                lambda: 2 ** r.randrange(29, 70), lambda: -(2 ** r.randrange(0, 70))][k]()

    def newline(self) -> bytes:
        return self.rng.choice((b"\n", b"\n", b"\n", b"\r\n", b"\r"))

    # -- categories
    def g_random_bytes(self) -> tuple[bytes, None]:
        r = self.rng
        n = r.choice((r.randrange(1, 16), r.randrange(1, 300), r.randrange(1, 3000)))
        alphabet = r.choice((None, b"\x00\x03\xff\x80\xfe\x7f\x1b\x04", b"$*~{}[]\":,0123456789abcdef"))
        if alphabet is None:
            body = bytes(r.getrandbits(8) for _ in range(n))
        else:
            body = bytes(r.choice(alphabet) for _ in range(n))
        if r.random() < 0.5:
            body = b"$" + body  # past the "not a frame" test more often
        return body + b"\n", None

    def g_mutated(self) -> tuple[bytes, None]:
        r = self.rng
        orig = frames.encode(self.valid_obj())
        b = bytearray(orig)
        for _ in range(r.randrange(1, 5)):
            op = r.randrange(4)
            i = r.randrange(len(b))
            if op == 0:
                b[i] ^= 1 << r.randrange(8)
            elif op == 1:
                b.insert(i, r.getrandbits(8))
            elif op == 2 and len(b) > 2:
                del b[i]
            else:
                j = r.randrange(len(b))
                b[i], b[j] = b[j], b[i]
        if bytes(b) == orig:  # a swap of equal bytes: make it a real change
            b[1] ^= 0x01
        return bytes(b) + b"\n", None

    def g_truncated(self) -> tuple[bytes, None]:
        f = frames.encode(self.valid_obj())
        return f[: self.rng.randrange(1, len(f) - 1)] + self.newline(), None

    def g_oversized(self) -> tuple[bytes, None]:
        r = self.rng
        n = r.randrange(MAX_FRAME + 1, MAX_FRAME + 4000)
        kind = r.randrange(3)
        if kind == 0:  # a well-formed frame, just too long
            obj = {"s": self.seq(), "c": "status", "a": {"pad": "p" * n}}
            return frames.encode(obj), None
        if kind == 1:  # printable filler, no newline until the end
            return b"$" + bytes(r.randrange(0x20, 0x7F) for _ in range(n)) + b"*00000000\n", None
        return b"$" + b"[" * n + b"\n", None

    def g_bad_crc(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        o = self.valid_obj()
        inner = jbody(o)
        good = zlib.crc32(inner) & 0xFFFFFFFF
        k = r.randrange(6)
        if k == 0:
            crc = b"%08x" % (good ^ (1 << r.randrange(32)))
        elif k == 1:
            crc = b"%08X" % good if (b"%08X" % good) != (b"%08x" % good) else b"%08x" % (good ^ 1)
        elif k == 2:
            crc = (b"%08x" % good)[:7]
        elif k == 3:
            crc = b"%09x" % good
        elif k == 4:
            crc = b"zzzzzzzz"
        else:
            crc = b" %07x" % (good & 0xFFFFFFF) if good > 0xFFFFFFF else b"-0000001"
        return b"$" + inner + b"*" + crc + b"\n", None

    def g_wrong_types(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        o = self.valid_obj()
        k = r.randrange(5)
        if k == 0:  # s of the wrong type or range
            o["s"] = r.choice(("12", 1.5, 10 ** 40, -1, -10 ** 40, SEQ_MAX + 1, True, None, [1], {"s": 1}, 1e308))
        elif k == 1:  # c not a string
            o["c"] = r.choice(([o["c"]], 7, None, {"c": o["c"]}, True, 1.0))
        elif k == 2:  # a not an object
            o["a"] = r.choice(([], [1, 2], 3, "x", None, True, 2.5))
        elif k == 3:  # arguments of the wrong type for commands that take them
            c = r.choice(("time_set", "alarms_pause", "alarms_ack", "program_check", "program_set"))
            o["c"] = c
            bad = self.junk_value()
            if c == "time_set":
                o["a"] = r.choice(({"day": bad, "ms": 0}, {"day": 1, "ms": str(bad)}, {"day": 1}, {"ms": 5}, {"day": -1, "ms": bad}))
                if isinstance(o["a"].get("day"), bool) or (type(o["a"].get("day")) is int and 0 <= o["a"]["day"] <= 1 << 20 and type(o["a"].get("ms")) is int and 0 <= o["a"]["ms"] < 86_400_000):
                    o["a"]["day"] = "1"  # never a valid clock setting here
            elif c == "alarms_pause":
                o["a"] = {"ms": r.choice((str(bad), 1.5, -1, 0, 900_001, [5], None, True))}
            elif c == "alarms_ack":
                o["a"] = r.choice(({"code": [1]}, {"code": 5}, {"code": None}, {}, {"code": "x" * 500}))
            else:
                o["a"] = {"program": r.choice((bad if not isinstance(bad, dict) else [bad], "continuous", [THERAPY_PROGRAM], 500))}
        else:  # authentication fields of the wrong type
            o["r"] = r.choice((1, None, ["clinician"], "root", "", "clinician" * 40))
            o["n"] = r.choice(("1", 1.5, -1, 10 ** 40, None, [1]))
            o["d"] = r.choice((None, 7, "", "x" * 300, ["sim"]))
        seq = o["s"] if type(o.get("s")) is int and 0 <= o["s"] <= SEQ_MAX else None
        return frames.encode_body(jbody(o)), seq

    def g_huge_numbers(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        huge = r.choice(("1" + "0" * 40, "-1" + "0" * 40, "1e308", "1e309", "-1e309", "NaN", "Infinity",
                         "-Infinity", "1" + "0" * r.randrange(100, 1500), "0." + "0" * 300 + "1",
                         "9" * 19, "18446744073709551616", "1E400", "-0.0", "4e-400"))
        where = r.randrange(5)
        s = str(self.seq())
        if where == 0:
            text = '{"s":%s,"c":"status"}' % huge
            seq = None
        elif where == 1:
            text = '{"s":%s,"c":"time_set","a":{"day":%s,"ms":0}}' % (s, huge)
            seq = int(s)
        elif where == 2:
            text = '{"s":%s,"c":"alarms_pause","a":{"ms":%s}}' % (s, huge)
            seq = int(s)
        elif where == 3:
            f = r.choice(("rate_ug_per_day", "concentration_ug_per_ml", "min_rate_ug_per_day"))
            prog = jbody(dict(THERAPY_PROGRAM, **{f: 0})).decode().replace('"%s":0' % f, '"%s":%s' % (f, huge))
            text = '{"s":%s,"c":"%s","a":{"program":%s}}' % (s, r.choice(("program_check", "program_set")), prog)
            seq = int(s)
        else:
            text = '{"s":%s,"c":"status","a":{"x":[%s,%s]}}' % (s, huge, huge)
            seq = int(s)
        if where == 1 and huge in ("-0.0",):
            text = text.replace('"ms":0', '"ms":"0"')  # keep it invalid
        body = text.encode()
        if len(body) > MAX_FRAME - 12:
            body = body[: MAX_FRAME - 12]
        return crc_frame(body), seq

    def g_deep_nesting(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        k = r.randrange(5)
        room = MAX_FRAME - 12
        if k == 0:
            n = r.randrange(1, room // 2)
            body = b"[" * n + b"]" * n
        elif k == 1:
            n = r.randrange(1, room // 6)
            body = b'{"a":' * n + b"1" + b"}" * n
        elif k == 2:  # unclosed: a few thousand levels
            body = b"[" * r.randrange(1000, room)
        elif k == 3:  # nested inside a valid request
            n = r.randrange(1, (room - 40) // 2)
            s = self.seq()
            body = b'{"s":%d,"c":"status","a":{"x":' % s + b"[" * n + b"]" * n + b"}}"
            return crc_frame(body), s
        else:
            n = r.randrange(1, (room - 60) // 6)
            s = self.seq()
            body = b'{"s":%d,"c":"program_check","a":{"program":' % s + b'{"a":' * n + b"0" + b"}" * n + b"}}"
            return crc_frame(body), s
        return crc_frame(body[:room]), None

    def g_unknown_cmd(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        base = r.choice(KNOWN_COMMANDS)
        k = r.randrange(7)
        if k == 0:
            c = base.upper()
        elif k == 1:
            c = base + r.choice(("_", "x", " ", "\u0000", "\u00e9", "\ud800"))
        elif k == 2:
            c = ""
        elif k == 3:
            c = "".join(chr(r.randrange(0x20, 0x2FF)) for _ in range(r.randrange(1, 60)))
        elif k == 4:
            c = "x" * r.randrange(100, 1800)
        elif k == 5:
            c = "__init__" if r.random() < 0.5 else r.choice(("cmd_status", "_handlers", "sync", "__class__", "get"))
        else:
            c = base[: r.randrange(1, len(base))] if len(base) > 1 else "?"
        if c in KNOWN_COMMANDS:
            c = c + "?"
        s = self.seq()
        body = jbody({"s": s, "c": c, "a": {"program": THERAPY_PROGRAM}})
        return crc_frame(body[: MAX_FRAME - 12]), s

    def g_absurd_program(self) -> tuple[bytes, Optional[int]]:
        """program_set/program_check with programs that validation must refuse."""
        r = self.rng
        p = dict(THERAPY_PROGRAM)
        k = r.randrange(10)
        if k == 0:
            p["rate_ug_per_day"] = r.choice((10 ** 40, 10 ** 6, 2 ** 30, -500, 0, 5000, 1e308, "500", 500.0, None, True))
        elif k == 1:
            p["concentration_ug_per_ml"] = r.choice((0, -2000, 3, 10 ** 40, "2000", 2000.5, None, [2000]))
        elif k == 2:
            p["drug"] = r.choice(("morphine", "", "BACLOFEN", None, 1, ["baclofen"], "baclofen\u0000", "x" * 300))
        elif k == 3:
            p["mode"] = r.choice(("bolus", "", None, 5, "CONTINUOUS", ["continuous"]))
        elif k == 4:
            p["mode"] = "flex"
            p["steps"] = r.choice(([], [{"start": "25:00", "rate_ug_per_day": 100}],
                                   [{"start": "00:00", "rate_ug_per_day": 10 ** 40}],
                                   [{"start": "00:00", "rate_ug_per_day": 100}] * 49,
                                   [{"start": "00:00", "rate_ug_per_day": 100}, {"start": "00:00", "rate_ug_per_day": 100}],
                                   [{"start": "06:00", "rate_ug_per_day": 100}],
                                   "00:00", [None], [[0, 100]]))
        elif k == 5:
            p["periodic_boluses"] = r.choice(([{"time": "08:00", "dose_ug": 10 ** 40, "duration_min": 10}],
                                              [{"time": "99:99", "dose_ug": 10, "duration_min": 10}],
                                              [{"time": "08:00", "dose_ug": 10, "duration_min": -1}],
                                              [{"time": "08:00"}] * 30, {"time": "08:00"}, "x"))
        elif k == 6:
            p["min_rate_ug_per_day"] = r.choice((-1, 10 ** 40, 900_000, "0", 0.5))
        elif k == 7:
            del p[r.choice(("drug", "concentration_ug_per_ml", "mode", "rate_ug_per_day"))]
        elif k == 8:
            p["patient_bolus"] = r.choice(({"dose_ug": 10 ** 40}, {"dose_ug": -5, "lockout_min": 0}, "yes", [1]))
            p["rate_ug_per_day"] = 10 ** 40  # whatever patient_bolus looks like, this cannot pass
        else:
            p = r.choice((None, [], "continuous", 500, {"": 0}, {"drug": {"drug": "baclofen"}}))  # type: ignore[arg-type]
        s = self.seq()
        c = r.choice(("program_set", "program_check"))
        return frames.encode_body(jbody({"s": s, "c": c, "a": {"program": p}})), s

    def g_valid_read(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        s = self.seq()
        c = r.choice(("status", "identify", "hello", "alarms", "drugs", "program_show"))
        f = frames.encode({"s": s, "c": c})
        if r.random() < 0.3:
            f = f + f  # an exact retry: answered from the reply cache
        return f, s

    def g_therapy_unsigned(self) -> tuple[bytes, Optional[int]]:
        """Valid therapy commands without a MAC, or with a wrong or malformed one."""
        r = self.rng
        s = self.seq()
        c = r.choice(("stop", "resume", "program_set", "time_set"))
        o: dict[str, Any] = {"s": s, "c": c}
        if c == "program_set":
            o["a"] = {"program": dict(THERAPY_PROGRAM, rate_ug_per_day=r.randrange(1, 900))}
        elif c == "time_set":
            o["a"] = {"day": r.randrange(0, 10000), "ms": r.randrange(0, 86_400_000)}
        k = r.randrange(4) if self.bad_macs else r.randrange(2)
        if k >= 1:
            o.update({"r": r.choice(("clinician", "patient", "anyone", "admin")),
                      "n": r.randrange(1, SEQ_MAX), "d": r.choice(("sim-0", "x", "bench"))})
        body = jbody(o)
        mac = None
        if k == 2:
            mac = "%064x" % r.getrandbits(256)
        elif k == 3:
            mac = r.choice(("0" * 64, "G" * 64, "%064X" % r.getrandbits(256)))
        return crc_frame(body + (b"~" + mac.encode() if mac else b"")), s

    def g_signed_hostile(self) -> tuple[bytes, Optional[int]]:
        r = self.rng
        assert self.signer is not None
        s = self.seq()
        k = r.randrange(6)
        if k <= 1:  # the absurd programs, now past authentication
            frame, _ = self.g_absurd_program()
            obj = json.loads(frame[1:frame.rindex(b"*")])
        elif k == 2:  # wrong argument types for the clinician's commands
            c = r.choice(("time_set", "alarms_pause", "alarms_ack", "program_set", "program_check", "log", "history"))
            bad = self.junk_value()
            a = {"time_set": {"day": str(bad), "ms": bad}, "alarms_pause": {"ms": r.choice((str(bad), -1, 0, 900_001, 1.5))},
                 "alarms_ack": {"code": r.choice(([bad], 5, None))}, "program_set": {"program": [bad]},
                 "program_check": {"program": r.choice(("x", 5, [THERAPY_PROGRAM]))},
                 "log": {"since": r.choice((-1, "0", 1.5, 10 ** 40)), "max": r.choice((0, 41, 10 ** 40, "20"))},
                 "history": {"from_hour": r.choice((-1, "0", 10 ** 40)), "to_hour": r.choice((10 ** 40, -5, None))}}[c]
            obj = {"s": s, "c": c, "a": a}
        elif k == 3:  # huge numbers where whole numbers are expected
            huge = r.choice((10 ** 40, -10 ** 40, 1e308, 10 ** r.randrange(20, 400), 2 ** 30, -(2 ** 31)))
            f = r.choice(("rate_ug_per_day", "concentration_ug_per_ml", "min_rate_ug_per_day"))
            obj = r.choice(({"s": s, "c": "time_set", "a": {"day": huge, "ms": 0}},
                            {"s": s, "c": "time_set", "a": {"day": 1, "ms": huge}},
                            {"s": s, "c": r.choice(("program_set", "program_check")), "a": {"program": dict(THERAPY_PROGRAM, **{f: huge})}}))
        elif k == 4:  # deep nesting inside a program
            n = r.randrange(1, 300)
            obj = {"s": s, "c": r.choice(("program_set", "program_check")), "a": {"program": dict(THERAPY_PROGRAM, steps=1)}}
            body = jbody(obj).replace(b'"steps":1', b'"steps":' + b"[" * n + b"]" * n)
            obj = json.loads(body)
            if n > 200:  # CPython's json would take it; keep the frame inside the limit
                obj["a"]["program"]["steps"] = []
        else:  # unknown commands and arguments nobody asked for
            obj = {"s": s, "c": r.choice(("format", "debug", "exec", "eval", "reset", "__init__", "program_set ", "STOP")),
                   "a": {"x": self.junk_value()}}
        obj["s"] = s
        body, mac = self.signer.sign(obj)
        if len(body) > MAX_FRAME - 80:
            body, mac = self.signer.sign({"s": s, "c": "program_check", "a": {"program": "x"}})
        return crc_frame(body + b"~" + mac.encode()), s


def expected_replies(data: bytes) -> int:
    """How many replies the device owes for these bytes (docs/protocol.md), by the firmware's
    own rules (firmware/services/link.py LineAssembler): lines end at CR or LF; a '$' always
    starts a new frame (what came before it on the line is dropped); a line longer than
    MAX_FRAME since its last '$' earns one TOO_LONG; a complete line that starts with '$' earns
    one reply; other lines (REPL chatter) none."""
    n = 0
    length = 0
    overflow = False
    framed = False  # the bytes held start with '$'
    for b in data:
        if b in (0x0A, 0x0D):
            if overflow:
                n += 1
            elif length and framed:
                n += 1
            length, overflow, framed = 0, False, False
        elif b == 0x24:
            length, overflow, framed = 1, False, True
        elif overflow:
            continue
        elif length >= MAX_FRAME:
            overflow, length = True, 0
        else:
            if length == 0:
                framed = False
            length += 1
    return n


# ---- signing with the keys the bench handed to PUMPCTL_HOME ----------------------------------
class Signer:
    """Clinician signatures with an in-memory counter (one keystore write at the end, not one
    fsync per frame); close() stores the last counter used, so later pumpctl calls go on above."""

    def __init__(self, device_id: str) -> None:
        from pumpctl import signing
        from pumpctl.keystore import Keystore
        self._signing = signing
        self.ks = Keystore()
        self.device_id = device_id
        dk = self.ks.load(device_id)
        self.key = dk.key_bytes("clinician")
        self.counter = dk.counters["clinician"]

    def sign(self, obj: dict) -> tuple[bytes, str]:
        self.counter += 1
        full = dict(obj, **self._signing.build_auth_fields("clinician", self.counter, self.device_id))
        body = frames.body_bytes(full)
        return body, self._signing.sign_body(body, self.key)

    def close(self) -> None:
        self.ks.raise_counter(self.device_id, "clinician", self.counter)


# ---- the serial port ---------------------------------------------------------------------------
class Wire:
    """The bench's pty, non-blocking: writes and reads interleaved so neither side stalls."""

    def __init__(self, port: str, stall_s: float = 30.0) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.stall_s = stall_s
        self._buf = b""
        self.replies_ok = 0
        self.codes: collections.Counter[str] = collections.Counter()
        self.garbled: list[bytes] = []
        self.noise: list[bytes] = []
        self.bug_replies: list[tuple[dict, int]] = []  # (reply, frames sent when it arrived)
        self.ok_seqs: dict[int, dict] = {}  # ok replies for sequence numbers we watch
        self.watch: set[int] = set()
        self.all_seen: dict[int, list[dict]] = {}
        self.sent_frames = 0
        self.counting = False

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _take(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.startswith(b"$"):
            if line.strip() and len(self.noise) < 20:
                self.noise.append(line[:200])
            return
        try:
            rep = frames.parse(line)
        except frames.FrameError:
            if len(self.garbled) < 20:
                self.garbled.append(line[:200])
            return
        if rep is None:
            return
        s = rep.get("s")
        if s in self.watch:
            self.all_seen.setdefault(s, []).append(rep)
        if self.counting:
            if rep.get("ok") is True:
                self.replies_ok += 1
            else:
                e = rep.get("e") if isinstance(rep.get("e"), dict) else {}
                code = str(e.get("code"))
                self.codes[code] += 1
                if code in BUG_CODES:
                    self.bug_replies.append((rep, self.sent_frames))

    def _read(self) -> int:
        got = 0
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            got += len(chunk)
            self._buf += chunk
        if got:
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                self._take(line)
        return got

    def drain(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while True:
            r, _, _ = select.select([self.fd], [], [], max(0.0, min(0.05, end - time.monotonic())))
            if r:
                self._read()
            if time.monotonic() >= end:
                return

    def write(self, data: bytes) -> None:
        mv = memoryview(data)
        last = time.monotonic()
        while mv:
            r, w, _ = select.select([self.fd], [self.fd], [], 0.5)
            if r and self._read():
                last = time.monotonic()
            if w:
                try:
                    n = os.write(self.fd, mv[:4096])
                except BlockingIOError:
                    n = 0
                if n:
                    mv = mv[n:]
                    last = time.monotonic()
            if time.monotonic() - last > self.stall_s:
                raise FuzzFailure(f"the firmware stopped reading its port ({len(mv)} bytes not accepted for {self.stall_s:.0f} s)")

    def request(self, obj: dict, mac: Optional[str] = None, body: Optional[bytes] = None,
                timeout: float = 30.0, tries: int = 2,
                accept: Callable[[dict], bool] = lambda rep: True) -> dict:
        """Send one frame and return the reply with its sequence number (the same bytes again
        on a timeout, as the protocol prescribes for a lost reply)."""
        s = obj["s"]
        data = frames.encode_body(body if body is not None else jbody(obj), mac)
        self.watch.add(s)
        self.all_seen.pop(s, None)
        try:
            for _ in range(tries):
                self.write(data)
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    for rep in self.all_seen.get(s, ()):
                        if accept(rep):
                            return rep
                    self.drain(0.02)
            seen = self.all_seen.get(s)
            raise FuzzFailure(f"no {'acceptable ' if seen else ''}reply to {obj.get('c')!r} (s={s}) within "
                              f"{timeout:.0f} s, {tries} tries" + (f"; got {seen[-1]}" if seen else ""))
        finally:
            self.watch.discard(s)


# ---- the device as a trusted programmer sees it -----------------------------------------------
class Device:
    def __init__(self, wire: Wire, rng: random.Random) -> None:
        self.wire = wire
        self.rng = rng
        self.signer: Optional[Callable[[dict], tuple[bytes, str]]] = None
        self.signer_obj: Optional[Signer] = None
        self.device_id: Optional[str] = None

    def seq(self) -> int:
        return self.rng.randrange(1, SEQ_MAX)

    def call(self, cmd: str, args: Optional[dict] = None, signed: bool = False) -> dict:
        """The reply (ok or not) of one request; signed with the clinician key when the bench
        handed keys to this PUMPCTL_HOME (once authentication is wired)."""
        obj: dict[str, Any] = {"s": self.seq(), "c": cmd}
        if args is not None:
            obj["a"] = args
        if signed and self.signer is not None:
            body, mac = self.signer(obj)
            return self.wire.request(obj, mac=mac, body=body)
        return self.wire.request(obj)

    def ok(self, cmd: str, args: Optional[dict] = None, signed: bool = False) -> dict:
        rep = self.call(cmd, args, signed)
        if rep.get("ok") is not True:
            raise FuzzFailure(f"{cmd} refused: {rep.get('e')}")
        return rep.get("d") or {}

    def find_keys(self) -> None:
        ident = self.ok("identify")
        self.device_id = ident.get("device_id")
        try:
            from pumpctl.keystore import Keystore
            if not self.device_id or not Keystore().exists(self.device_id):
                return
            signer = Signer(self.device_id)
        except Exception:
            return
        self.signer = signer.sign
        self.signer_obj = signer


def log_entries(d: dict) -> list:
    """The entries of a `log` reply, whatever the list is called."""
    for k in ("entries", "records", "events", "log", "items"):
        if isinstance(d.get(k), list):
            return d[k]
    for v in d.values():
        if isinstance(v, list):
            return v
    return []


def entry_seq(e: Any) -> Optional[int]:
    if isinstance(e, dict):
        v = e.get("seq", e.get("n"))
        return v if type(v) is int else None
    if isinstance(e, list) and e and type(e[0]) is int:
        return e[0]
    return None


def entry_type(e: Any) -> Optional[str]:
    if isinstance(e, dict):
        v = e.get("type", e.get("t", e.get("event")))
        return v if isinstance(v, str) else None
    if isinstance(e, list):
        for v in e[1:3]:
            if isinstance(v, str):
                return v
    return None


# ---- one campaign ------------------------------------------------------------------------------
class Result:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.sent: collections.Counter[str] = collections.Counter()
        self.bytes_sent = 0
        self.frames = 0
        self.codes: collections.Counter[str] = collections.Counter()
        self.replies_ok = 0
        self.checks_passed = 0
        self.checks_total = 0
        self.fuzz_s = 0.0
        self.wall_s = 0.0
        self.therapy_included = False
        self.heap: tuple[Any, Any] = (None, None)
        self.replies_expected = 0
        self.log_new: Optional[int] = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        rows = [("seed", str(self.seed)),
                ("frames sent", str(self.frames)),
                ("bytes sent", str(self.bytes_sent)),
                ("therapy commands (unsigned)", "included (refused by auth)" if self.therapy_included else
                 "left out: the device accepts an unsigned stop")]
        for c in sorted(self.sent):
            rows.append(("  frames: " + c, str(self.sent[c])))
        rows.append(("replies owed / received", f"{self.replies_expected}/{self.replies_ok + sum(self.codes.values())}"))
        rows.append(("ok replies", str(self.replies_ok)))
        for c in sorted(self.codes):
            rows.append(("  error replies: " + c, str(self.codes[c])))
        rows += [("status checks passed", f"{self.checks_passed}/{self.checks_total}"),
                 ("heap free before/after (B)", f"{self.heap[0]}/{self.heap[1]}"),
                 ("frames/s (fuzz phase)", f"{self.frames / self.fuzz_s:.0f}" if self.fuzz_s else "-"),
                 ("fuzz phase (s)", f"{self.fuzz_s:.1f}"),
                 ("wall time (s)", f"{self.wall_s:.1f}"),
                 ("result", "PASS" if self.ok else "FAIL")]
        w = max(len(a) for a, _ in rows)
        out = [f"{a:<{w}}  {b}" for a, b in rows]
        out += ["note: " + n for n in self.notes]
        out += ["FAILED: " + f for f in self.failures]
        if not self.ok:
            out.append(f"reproduce: python tests/fuzz/fuzz_link.py --seed {self.seed} --frames {self.frames}")
        return "\n".join(out)


def death_cause(pid: int) -> str:
    """How the bench process ended (it is our child: its exit status is still there to read)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "exit status not available"
    if not got:
        return "still running"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import signal
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def _snapshot(dev: Device, info: benchmod.BenchInfo) -> dict:
    st = dev.ok("status")
    truth = benchmod.control(info, {"cmd": "show"}, timeout=30)
    return {"status": {k: st.get(k) for k in STATUS_FIELDS if k in st},
            "head_steps": truth.get("head_steps"),
            "virtual_ms": (truth.get("clock") or {}).get("virtual_ms"),
            "heap_free": st.get("heap_free"),
            "alarms": sorted(a.get("code", "?") for a in st.get("alarms") or [] if isinstance(a, dict))}


def _refusal(rep: dict) -> tuple[str, str]:
    e = rep.get("e")
    if not isinstance(e, dict):
        e = {}
    return str(e.get("code")), str(e.get("msg"))


def _lift_lockout(dev: Device, info: benchmod.BenchInfo, rep: dict, res: Result) -> bool:
    """After the therapy checks: if the fuzz's wrong MACs locked authentication, let virtual
    time pass until the lock ends, so the signed reads can be compared. True if it did."""
    code, msg = _refusal(rep)
    if code != "AUTH_LOCKED":  # firmware before issue 16 locked out; it no longer does
        return False
    m = re.search(r"(\d+) s left", msg)
    secs = int(m.group(1)) + 1 if m else 301
    benchmod.control(info, {"cmd": "advance", "ms": secs * 1000}, timeout=300)
    res.notes.append(f"authentication was locked by the fuzz's wrong MACs: advanced {secs} s after the "
                     "reservoir/delivered checks to lift it for the signed reads")
    return True


def _signed_read(dev: Device, info: benchmod.BenchInfo, res: Result, cmd: str,
                 args: Optional[dict] = None, lift: bool = False) -> dict:
    rep = dev.call(cmd, args, signed=True)
    if rep.get("ok") is not True and lift and _lift_lockout(dev, info, rep, res):
        rep = dev.call(cmd, args, signed=True)
    if rep.get("ok") is True:
        return rep.get("d") or {}
    code, msg = _refusal(rep)
    hint = " (no keys for this device in PUMPCTL_HOME)" if code.startswith("AUTH") and dev.signer is None else ""
    raise FuzzFailure(f"{cmd} refused: {code}: {msg}{hint}")


def _log_bounds(dev: Device, info: benchmod.BenchInfo, res: Result, lift: bool = False) -> Optional[tuple[int, int]]:
    """(first_seq, last_seq) of the event log, or None when the firmware has no `log`."""
    rep = dev.call("log", {"since": 0, "max": 1}, signed=True)
    if _refusal(rep)[0] == "UNKNOWN_CMD":
        return None
    d = _signed_read(dev, info, res, "log", {"since": 0, "max": 1}, lift) if rep.get("ok") is not True else rep.get("d") or {}
    first, last = d.get("first_seq"), d.get("last_seq")
    if type(first) is not int or type(last) is not int:
        raise FuzzFailure(f"log reply without first_seq/last_seq: {str(d)[:200]}")
    return first, last


def _log_types(dev: Device, info: benchmod.BenchInfo, res: Result, since: int, max_pages: int = 2000) -> collections.Counter:
    types: collections.Counter[str] = collections.Counter()
    for _ in range(max_pages):
        d = _signed_read(dev, info, res, "log", {"since": since, "max": 40})
        recs = log_entries(d)
        if not recs:
            break
        for r in recs:
            types[entry_type(r) or "?"] += 1
            since = max(since, entry_seq(r) or since)
    return types


def _isolate(gen: Generator, wire: Wire, dev: Device, res: Result, before: dict, n_frames: int,
             span: tuple[int, int], out: Any) -> None:
    """Replay frames span[0]..span[1] of the campaign one at a time, each followed by a status
    request, and name every frame after which a bug reply or a new alarm appeared."""
    a, b = span
    alarms = set(before["alarms"])
    for i in range(b + 1):
        if res.therapy_included and i >= n_frames // 2:
            gen.bad_macs = True
        cat, data, _ = gen.next()
        if i < a:
            continue
        res.sent[cat] += 1
        res.bytes_sent += len(data)
        res.replies_expected += expected_replies(data) + 1
        wire.write(data)
        st = wire.request({"s": dev.seq(), "c": "status"}, timeout=30,
                          accept=lambda r: r.get("ok") is True and "delivered_steps" in (r.get("d") or {}))
        res.checks_total += 1
        res.checks_passed += 1
        now = {str(x.get("code")) for x in (st.get("d") or {}).get("alarms") or [] if isinstance(x, dict)}
        found = []
        if wire.bug_replies:
            found.append(f"bug reply {wire.bug_replies[0][0].get('e')}")
            wire.bug_replies.clear()
        if "AUTH_FAILURES" in now - alarms:  # the designed answer to repeated wrong MACs
            print(f"frame {i} ({cat}) raised AUTH_FAILURES (expected): {data[:200]!r}", file=out, flush=True)
        if now - alarms - {"AUTH_FAILURES"}:
            found.append(f"new alarm {sorted(now - alarms - {'AUTH_FAILURES'})}")
        alarms |= now
        if found:
            msg = f"frame {i} ({cat}): {', '.join(found)}: {data[:400]!r}"
            res.failures.append(msg)
            print(msg, file=out, flush=True)


def run(seed: int, n_frames: int, batch: int = 64, check_every: int = 500, out: Any = None,
        keep_dir: bool = False, progress: bool = False,
        isolate: Optional[tuple[int, int]] = None, heap: Optional[str] = None) -> Result:
    """One campaign on a fresh bench. Returns the Result (its table() is the report)."""
    out = out or sys.stdout
    res = Result(seed)
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    old_home = os.environ.get("PUMPCTL_HOME")
    os.environ["PUMPCTL_HOME"] = str(tmp / "home")
    info = None
    wire = None
    dev = None
    try:
        kw: dict[str, Any] = {"heap": heap} if heap else {}
        info = benchmod.start(tmp / "bench", lockstep=True, **kw)
        log_path = info.dir / "bench.log"
        wire = Wire(info.port)
        wire.drain(0.2)  # the banner
        dev = Device(wire, random.Random(seed ^ 0x5EED))
        dev.find_keys()
        if dev.signer is not None:
            res.notes.append(f"setup requests signed with the clinician key of {dev.device_id} from PUMPCTL_HOME")

        # -- therapy running, then the record of everything fuzzing must not change
        dev.ok("program_set", {"program": THERAPY_PROGRAM}, signed=True)
        benchmod.control(info, {"cmd": "advance", "ms": 3_600_000}, timeout=120)
        # Probe: does the device refuse an unsigned stop?
        probe = dev.call("stop")
        if probe.get("ok") is True:
            dev.ok("resume", signed=True)
            res.therapy_included = False
        else:
            code = str((probe.get("e") or {}).get("code"))
            if not code.startswith("AUTH"):
                raise FuzzFailure(f"unsigned stop on a running pump refused with {code}, not an AUTH_* code: {probe.get('e')}")
            res.therapy_included = True
        before = _snapshot(dev, info)
        if before["status"].get("state") != "running" or not before["status"].get("delivered_steps"):
            raise FuzzFailure(f"the therapy is not running before fuzzing: {before['status']}")
        prog_before = _signed_read(dev, info, res, "program_show")
        log_before = _log_bounds(dev, info, res)
        if log_before is None:
            res.notes.append("the firmware has no `log` command yet: log check skipped")
        res.heap = (before["heap_free"], None)
        log_size = log_path.stat().st_size if log_path.exists() else 0

        # -- the campaign
        gen = Generator(seed, res.therapy_included, dev.signer_obj)
        check_rng = random.Random(seed ^ 0xC4EC)
        recent: collections.deque = collections.deque(maxlen=check_every + batch)
        wire.counting = True
        t0 = time.monotonic()
        i = 0
        next_check = check_every
        prev_check = 0
        if isolate is not None:
            _isolate(gen, wire, dev, res, before, n_frames, isolate, out)
            i = n_frames  # the main loop has nothing left to do
            res.frames = isolate[1] - isolate[0] + 1
        while i < n_frames:
            chunk = []
            if res.therapy_included and i >= n_frames // 2:
                gen.bad_macs = True
            for _ in range(min(batch, n_frames - i, next_check - i, max(1, n_frames // 2 - i) if i < n_frames // 2 else batch)):
                cat, data, _seq = gen.next()
                res.replies_expected += expected_replies(data)
                res.sent[cat] += 1
                res.bytes_sent += len(data)
                recent.append((i, cat, data))
                chunk.append(data)
                i += 1
            wire.write(b"".join(chunk))
            wire.sent_frames = i
            if i >= next_check or i == n_frames:
                next_check += check_every
                res.checks_total += 1
                res.replies_expected += 1
                s = check_rng.randrange(1, SEQ_MAX)
                try:
                    # A fuzz frame may have used the same s: only a status reply counts.
                    rep = wire.request({"s": s, "c": "status"}, timeout=30,
                                       accept=lambda r: r.get("ok") is True and "delivered_steps" in (r.get("d") or {}))
                except FuzzFailure as e:
                    raise FuzzFailure(f"{e} after frame {i - 1}; last frames: " +
                                      "; ".join(f"#{j} {c} {d[:80]!r}" for j, c, d in list(recent)[-5:]))
                d = rep.get("d") or {}
                if rep.get("ok") is True and d.get("delivered_steps") == before["status"]["delivered_steps"]:
                    res.checks_passed += 1
                else:
                    res.failures.append(f"status check after frame {i - 1} wrong: {str(rep)[:300]}")
                if wire.bug_replies:
                    rep_b = wire.bug_replies[0][0]
                    window = [f"#{j} {c} {dd[:120]!r}" for j, c, dd in recent]
                    res.failures.append(f"{len(wire.bug_replies)} bug replies, first {rep_b.get('e')}, between frames "
                                        f"{prev_check} and {i - 1} (replay them one by one to find the frame)")
                    print("frames since the last good check:\n  " + "\n  ".join(window[-40:]), file=out)
                    wire.bug_replies.clear()
                recent.clear()
                prev_check = i
                if progress and (i // check_every) % max(1, 10_000 // check_every) == 0:
                    el = time.monotonic() - t0
                    print(f"  {i} frames, {res.checks_passed}/{res.checks_total} status checks, {i / el:.0f} frames/s",
                          file=out, flush=True)
        res.fuzz_s = time.monotonic() - t0
        wire.drain(0.3)
        wire.counting = False
        if isolate is None:
            res.frames = i
        res.codes = wire.codes
        res.replies_ok = wire.replies_ok

        got = res.replies_ok + sum(res.codes.values())
        if got != res.replies_expected and isolate is None:
            res.failures.append(f"{res.replies_expected} replies owed (one per frame line), {got} received")

        # -- afterwards: alive, answering, nothing changed
        benchmod.control(info, {"cmd": "ping"}, timeout=10)
        ident = dev.call("identify")
        if ident.get("ok") is not True or ident.get("d", {}).get("device_id") != dev.device_id:
            res.failures.append(f"identify after fuzzing: {ident}")
        after = _snapshot(dev, info)
        res.heap = (before["heap_free"], after["heap_free"])
        for k, v in before["status"].items():
            if after["status"].get(k) != v:
                res.failures.append(f"status {k} changed: {v!r} -> {after['status'].get(k)!r}")
        for k in ("head_steps", "virtual_ms"):
            if after[k] != before[k]:
                res.failures.append(f"bench truth {k} changed: {before[k]} -> {after[k]}")
        if after["alarms"] != before["alarms"]:
            res.notes.append(f"alarms before {before['alarms']} after {after['alarms']}")
        # AUTH_FAILURES is the designed answer to repeated wrong MACs; any other new alarm is not.
        unexpected = sorted(set(after["alarms"]) - set(before["alarms"]) - {"AUTH_FAILURES"})
        if unexpected:
            res.failures.append(f"alarms raised by the fuzz: {unexpected}" + (
                " (MEMORY_ERROR: an event-log append failed, so refusals went unlogged)" if "MEMORY_ERROR" in unexpected else ""))
        # Signed reads last: lifting a lockout lets virtual time pass.
        prog_after = _signed_read(dev, info, res, "program_show", lift=True)
        if prog_after != prog_before:
            res.failures.append(f"program changed: {prog_before} -> {prog_after}")
        if log_before is not None:
            try:
                first0, last0 = log_before
                after_b = _log_bounds(dev, info, res, lift=True)
                assert after_b is not None
                first1, last1 = after_b
                res.log_new = last1 - last0
                res.notes.append(f"log: seq {first0}..{last0} before, {first1}..{last1} after")
                if last0 and first1 > last0:
                    res.failures.append(f"the log lost every record from before the fuzz (first seq {first0} -> {first1}, "
                                        f"last before {last0}): a flood of refusals wipes the event history")
                elif first1 > first0:
                    res.notes.append(f"log ring dropped records {first0}..{first1 - 1} during the fuzz")
                types = _log_types(dev, info, res, last0)
                res.notes.append(f"log: {last1 - last0} new records {dict(types)}")
                bad = [t for t in types if THERAPY_LOG.search(t) and not re.search(r"auth|fail|refus|denied|reject", t)]
                if bad:
                    res.failures.append(f"log shows therapy or settings events during fuzzing: {bad}")
            except FuzzFailure as e:  # the remaining checks still run
                res.failures.append(f"log check: {e}")
        if wire.garbled:
            res.failures.append(f"{len(wire.garbled)} reply lines the host cannot parse, first {wire.garbled[0]!r}")
        if wire.noise:
            res.notes.append(f"non-frame output from the firmware: {wire.noise[:3]!r}")
        if log_path.exists():
            with open(log_path, "rb") as f:
                f.seek(log_size)
                tail = f.read().decode(errors="replace")
            if "Traceback" in tail or "Error" in tail:
                res.failures.append("the bench log shows an error during fuzzing:\n" + tail[-1500:])
    except FuzzFailure as e:
        res.failures.append(str(e))
    except Exception as e:  # a bench that will not start, a control channel that died, ...
        import traceback
        where = traceback.extract_tb(e.__traceback__)[-1]
        res.failures.append(f"{type(e).__name__}: {e} (in {where.name}, line {where.lineno})")
    finally:
        if dev is not None and dev.signer_obj is not None:
            try:
                dev.signer_obj.close()
            except Exception as e:
                res.notes.append(f"could not store the last counter in the keystore: {e}")
        if wire is not None:
            res.codes = wire.codes
            res.replies_ok = wire.replies_ok
            wire.close()
        if info is not None:
            if not benchmod._alive(info.pid):
                res.failures.append(f"the bench process died ({death_cause(info.pid)}) during or after "
                                    f"frame {res.frames or sum(res.sent.values())}")
            benchmod.stop(info)
        if old_home is None:
            os.environ.pop("PUMPCTL_HOME", None)
        else:
            os.environ["PUMPCTL_HOME"] = old_home
        if keep_dir or res.failures:
            res.notes.append(f"bench directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        res.wall_s = time.monotonic() - t_start
        if not res.frames:
            res.frames = sum(res.sent.values())
    return res


class _DummySigner:
    """Stands in for the bench's keys when only showing a frame: same content, dummy MAC."""
    counter = 0

    def sign(self, obj: dict) -> tuple[bytes, str]:
        self.counter += 1
        body = frames.body_bytes(dict(obj, r="clinician", n=self.counter, d="DUMMY"))
        return body, "0" * 64


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Fuzz the firmware's programmer link on a virtual bench (never for human use).")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    ap.add_argument("--frames", type=int, default=100_000, help="frames to send (default 100000)")
    ap.add_argument("--batch", type=int, default=64, help="frames written per batch without waiting (default 64)")
    ap.add_argument("--check-every", type=int, default=500, help="a valid status request every K frames (default 500)")
    ap.add_argument("--show-frame", type=int, default=None, metavar="I",
                    help="print frame I of this seed (with --therapy) and exit")
    ap.add_argument("--therapy", choices=("on", "off"), default="on",
                    help="for --show-frame: whether the run included unsigned therapy commands (see its table)")
    ap.add_argument("--signed", choices=("on", "off"), default="on",
                    help="for --show-frame: whether the run sent signed hostile frames (MACs shown are dummies)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory")
    ap.add_argument("--heap", default=None, help="MicroPython heap of the bench, e.g. 192K (default: the bench's own)")
    ap.add_argument("--isolate", metavar="A:B", default=None,
                    help="same setup and frames, but send only frames A..B, one at a time, each followed by a "
                         "status request, naming each frame after which a bug reply or a new alarm appears")
    a = ap.parse_args(argv)
    for name in ("frames", "batch", "check_every"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    if a.show_frame is not None:
        gen = Generator(seed, a.therapy == "on", _DummySigner() if a.signed == "on" else None)  # type: ignore[arg-type]
        for j in range(a.show_frame + 1):
            if a.therapy == "on" and j >= a.frames // 2:
                gen.bad_macs = True
            cat, data, _ = gen.next()
        print(f"seed {seed} frame {a.show_frame}: {cat} {data!r}")
        return 0
    print(f"fuzzing the link: seed {seed}, {a.frames} frames, batches of {a.batch}"
          + (f", heap {a.heap}" if a.heap else ""), flush=True)
    span = None
    if a.isolate:
        try:
            lo, hi = (int(x) for x in a.isolate.split(":"))
        except ValueError:
            ap.error(f"--isolate wants A:B (two frame numbers), not {a.isolate!r}")
        if not 0 <= lo <= hi < a.frames:
            ap.error(f"--isolate {a.isolate}: need 0 <= A <= B < --frames ({a.frames})")
        span = (lo, hi)
    res = run(seed, a.frames, a.batch, a.check_every, keep_dir=a.keep, progress=True, isolate=span, heap=a.heap)
    print(res.table())
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
