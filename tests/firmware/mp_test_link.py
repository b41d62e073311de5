# Firmware framing against the shared vectors (tests/vectors/frames.json), on the interpreter.
import json
from mptest import req, eq, raises
from services import link

_V = None


def _vectors():
    global _V
    if _V is None:
        with open("tests/vectors/frames.json") as f:
            _V = json.load(f)
    return _V


def test_shared_vectors():
    for v in _vectors():
        line = v["line"].encode()
        if v.get("none"):
            eq(link.decode(line), None, v["name"])
        elif "error" in v:
            e = raises(link.LinkError, link.decode, line)
            eq(e.code, v["error"], v["name"])
        else:
            body, mac = link.decode(line)
            eq(body.decode(), v["body"], v["name"])
            eq(mac, v["mac"], v["name"])
            if "object" in v:  # the encoder's side: what it must write for this object
                eq(link.encode(v["object"]).rstrip(b"\n"), line, v["name"])
                eq(link.parse_body(body), v["object"], v["name"])


def test_encode_is_printable_and_decodes():
    f = link.encode({"s": 1, "ok": True, "d": {"msg": "µg/day ☃", "n": [1, 2]}})
    for b in f[:-1]:
        assert 0x20 <= b <= 0x7E
    body, mac = link.decode(f[:-1])
    eq(link.parse_body(body)["d"]["msg"], "µg/day ☃")
    # Astral characters go out as a JSON surrogate pair (the host's json joins them).
    f = link.encode({"x": "\U0001F600"})
    assert b"\\ud83d\\ude00" in f
    # DEL is ASCII but not printable; json.dumps leaves it, the frame escapes it.
    f = link.encode({"x": "a\x7fb", "y": "plain"})
    for b in f[:-1]:
        assert 0x20 <= b <= 0x7E
    body, mac = link.decode(f[:-1])
    eq(link.parse_body(body), {"x": "a\x7fb", "y": "plain"})
    eq(link.ascii_json({"k": "plain ascii"}), '{"k":"plain ascii"}')
    # Every UTF-8 length, next to ASCII and at both ends, as CPython escapes them (and DEL).
    eq(link.ascii_json(["\u00b5g", "x\u4e2dy", "\U0001F600z\x7f", "\u07ff\u0800\uffff"]),
       '["\\u00b5g","x\\u4e2dy","\\ud83d\\ude00z\\u007f","\\u07ff\\u0800\\uffff"]')


@req("SR-045")
def test_assembler_drops_oversized_lines_and_recovers():
    a = link.LineAssembler(32)
    out = a.feed(b"x" * 100 + b"\nshort\r\n\n" + b"y" * 10, [])
    eq(out, [None, b"short"])
    out = a.feed(b"zz\n", [])
    eq(out, [b"y" * 10 + b"zz"])


def test_parse_body_refuses_non_objects_and_deep_nesting():
    for bad in (b"[1]", b"42", b"{", b"[" * 3000, b'"x"'):
        raises(link.LinkError, link.parse_body, bad)


@req("SR-045")
def test_a_dollar_starts_a_new_frame_so_a_jam_never_swallows_the_next():
    frame = link.encode({"s": 1, "c": "status"})
    a = link.LineAssembler()
    # 3000 bytes from a second writer without a newline, then the programmer's frame
    out = a.feed(b"Z" * 3000 + frame, [])
    eq(out, [frame[:-1]])
    # a jam longer than the buffer, with a '$' of its own: still only the real frame survives
    out = a.feed(b"$" + b"J" * (link.MAX_FRAME + 500) + frame, [])
    eq(out, [frame[:-1]])
    # a torn frame (its newline lost) in front of the next one
    out = a.feed(frame[:20] + frame, [])
    eq(out, [frame[:-1]])
    eq(a.dropped >= 2, True)


def test_a_dollar_in_a_string_goes_escaped_and_decodes_back():
    line = link.encode({"s": 2, "c": "x", "a": {"note": "$5 ~ok"}})
    eq(line.count(b"$"), 1)
    body, mac = link.decode(line[:-1])
    eq(link.parse_body(body)["a"]["note"], "$5 ~ok")
