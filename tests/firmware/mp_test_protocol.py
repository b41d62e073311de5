# The dispatcher against fake handlers: error replies for every kind of bad request, nothing
# raised out of handle_line, and retries answered from the cache without running twice.
from mptest import req, eq
from services import link
from core.base import Refusal
from services.protocol import Protocol, arg


class _Fake:
    def __init__(self):
        self.calls = 0

    def bump(self, args):
        self.calls += 1
        return {"calls": self.calls}

    def boom(self, args):
        raise KeyError("a bug")

    def refuse(self, args):
        raise Refusal("RANGE", "rate too high")

    def typed(self, args):
        return {"v": arg(args, "v", int, 0, 10)}


def _proto():
    f = _Fake()
    return f, Protocol({"bump": f.bump, "boom": f.boom, "refuse": f.refuse, "typed": f.typed})


def _reply(p, obj):
    line = link.encode(obj)[:-1]
    r = p.handle_line(line)
    return link.parse_body(link.decode(r[:-1])[0])


def test_ok_and_error_replies_carry_the_sequence():
    f, p = _proto()
    r = _reply(p, {"s": 5, "c": "bump"})
    eq(r["s"], 5)
    eq(r["ok"], True)
    eq(r["d"]["calls"], 1)
    r = _reply(p, {"s": 6, "c": "refuse"})
    eq((r["s"], r["ok"], r["e"]["code"]), (6, False, "RANGE"))


@req("SR-046")
def test_a_bug_in_a_handler_becomes_an_internal_error_reply():
    f, p = _proto()
    r = _reply(p, {"s": 1, "c": "boom"})
    eq(r["e"]["code"], "INTERNAL")
    eq(_reply(p, {"s": 2, "c": "bump"})["ok"], True)


class _ShortOfMemory:
    """Raises MemoryError the first `fails` times (a fragmented rp2 heap), then answers."""

    def __init__(self, fails):
        self.fails = fails
        self.calls = 0

    def __call__(self, args):
        self.calls += 1
        if self.calls <= self.fails:
            raise MemoryError("memory allocation failed, allocating 1203 bytes")
        return {"records": [1, 2, 3]}


@req("SR-046")
def test_a_reading_command_short_of_memory_is_run_again_and_others_are_said_to_be():
    once, always, acts = _ShortOfMemory(2), _ShortOfMemory(99), _ShortOfMemory(1)
    shrunk = []
    p = Protocol({"log": once, "status": always, "stop": acts}, reads=("log", "status"),
                 short_of_memory=lambda: shrunk.append(1))
    r = _reply(p, {"s": 1, "c": "log"})
    eq((r["ok"], r["d"]["records"], once.calls), (True, [1, 2, 3], 3), "asked again after a collection")
    eq(len(shrunk), 2, "told each time, so the log's pages shrink")
    r = _reply(p, {"s": 2, "c": "status"})
    eq((r["ok"], r["e"]["code"], always.calls), (False, "NO_MEMORY", 4), "3 times again, not forever")
    assert "memory" in r["e"]["msg"] and "ask again" in r["e"]["msg"], r["e"]["msg"]
    r = _reply(p, {"s": 3, "c": "stop"})
    eq((r["ok"], r["e"]["code"], acts.calls), (False, "NO_MEMORY", 1), "a command that acts is never run twice")


def test_argument_checks_name_the_argument():
    f, p = _proto()
    for a, code in (({}, "BAD_ARGS"), ({"v": "x"}, "BAD_ARGS"), ({"v": 11}, "RANGE"), ({"v": True}, "BAD_ARGS")):
        r = _reply(p, {"s": 3, "c": "typed", "a": a})
        eq(r["e"]["code"], code)
        assert "v" in r["e"]["msg"]
    eq(_reply(p, {"s": 4, "c": "typed", "a": {"v": 3}})["d"]["v"], 3)


def test_bad_envelopes():
    f, p = _proto()
    for obj, code in (({"c": "bump"}, "BAD_SEQ"), ({"s": -1, "c": "bump"}, "BAD_SEQ"),
                      ({"s": 1 << 40, "c": "bump"}, "BAD_SEQ"), ({"s": 1, "c": 5}, "BAD_CMD"),
                      ({"s": 1, "c": "nope"}, "UNKNOWN_CMD"), ({"s": 1, "c": "bump", "a": [1]}, "BAD_ARGS")):
        eq(_reply(p, obj)["e"]["code"], code)
    eq(f.calls, 0)
    eq(p.handle_line(None)[:1], b"$")
    eq(p.handle_line(b"hello REPL"), None)


_GOOD = "a" * 64


def _signed_proto():
    """A dispatcher whose authorise stub accepts MAC _GOOD as the clinician, refuses any other
    MAC and lets unsigned frames run as anyone; report calls are kept in `seen`."""
    f = _Fake()
    seen = []

    def authorise(cmd, body, req, mac):
        if mac is None:
            return "anyone"
        if mac != _GOOD:
            raise Refusal("AUTH_BAD_MAC", "MAC does not verify")
        return "clinician"

    p = Protocol({"bump": f.bump}, authorise=authorise, report=lambda *a: seen.append(a))
    return f, p, seen


def _parsed(r):
    return link.parse_body(link.decode(r[:-1])[0])


@req("SR-049")
def test_an_authenticated_retry_is_answered_from_cache_and_says_so():
    f, p, seen = _signed_proto()
    line = link.encode({"s": 9, "c": "bump"}, _GOOD)[:-1]
    r1 = _parsed(p.handle_line(line))
    r2 = _parsed(p.handle_line(line))
    eq(f.calls, 1)  # the retry did not run the command again
    eq((r1.get("cached"), r2.get("cached")), (None, True))
    eq((r2["s"], r2["d"]), (r1["s"], r1["d"]))
    eq(seen[-1], ("repeat", None, "bump", None))
    eq(p.repeats, 1)
    _reply(p, {"s": 10, "c": "bump"})
    eq(f.calls, 2)


@req("SR-049")
def test_a_copy_with_another_mac_is_checked_afresh_and_never_cached():
    f, p, seen = _signed_proto()
    genuine = link.encode({"s": 11, "c": "bump"}, _GOOD)[:-1]
    forged = link.encode({"s": 11, "c": "bump"}, "b" * 64)[:-1]
    # sent early, the forged copy is refused and plants nothing for the genuine frame
    eq(_parsed(p.handle_line(forged))["e"]["code"], "AUTH_BAD_MAC")
    eq(_parsed(p.handle_line(forged))["e"]["code"], "AUTH_BAD_MAC")
    r = _parsed(p.handle_line(genuine))
    eq((r["ok"], r.get("cached"), f.calls), (True, None, 1))
    # sent after, the forged copy does not fetch the genuine reply
    eq(_parsed(p.handle_line(forged))["e"]["code"], "AUTH_BAD_MAC")
    eq([x[0] for x in seen], ["auth", "auth", "auth"])
    # unauthenticated frames are never answered from the cache: each runs (reads only, here)
    u = link.encode({"s": 12, "c": "bump"})[:-1]
    p.handle_line(u)
    p.handle_line(u)
    eq(f.calls, 3)


def test_refusals_are_reported_with_their_stage():
    f, p, seen = _signed_proto()
    p.handle_line(b"$garbage*00000000")
    p.handle_line(None)
    p.handle_line(link.encode({"s": 1, "c": "nope"}, _GOOD)[:-1])
    eq([x[:2] for x in seen], [("frame", "BAD_CRC"), ("frame", "TOO_LONG"), ("frame", "UNKNOWN_CMD")])
