"""Regenerates tests/vectors/frames.json (run with CPython; both sides test against the file)."""
import json
import zlib
from pathlib import Path


def frame(inner: bytes) -> str:
    return ("$" + inner.decode() + "*" + "%08x" % (zlib.crc32(inner) & 0xFFFFFFFF))


mac = "ab" * 32
vectors = [
    {"name": "status request", "line": frame(b'{"s":1,"c":"status"}'), "body": '{"s":1,"c":"status"}', "mac": None},
    {"name": "with args", "line": frame(b'{"s":2,"c":"time_set","a":{"day":9000,"ms":0}}'), "body": '{"s":2,"c":"time_set","a":{"day":9000,"ms":0}}', "mac": None},
    {"name": "escaped unicode", "line": frame(b'{"s":3,"d":"\\u00b5g"}'), "body": '{"s":3,"d":"\\u00b5g"}', "mac": None},
    {"name": "with mac", "line": frame(b'{"s":4,"c":"stop","r":"clinician","n":7,"d":"SIM-0001"}~' + mac.encode()), "body": '{"s":4,"c":"stop","r":"clinician","n":7,"d":"SIM-0001"}', "mac": mac},
    {"name": "tilde inside body is not a mac", "line": frame(b'{"s":5,"x":"a~b"}'), "body": '{"s":5,"x":"a~b"}', "mac": None},
    {"name": "bad crc", "line": frame(b'{"s":1,"c":"status"}')[:-1] + "0" if not frame(b'{"s":1,"c":"status"}').endswith("0") else frame(b'{"s":1,"c":"status"}')[:-1] + "1", "error": "BAD_CRC"},
    {"name": "no crc", "line": '${"s":1,"c":"status"}', "error": "BAD_FRAME"},
    {"name": "short crc", "line": '${"s":1}*1234', "error": "BAD_FRAME"},
    {"name": "non-hex crc", "line": '${"s":1}*zzzzzzzz', "error": "BAD_FRAME"},
    {"name": "non-printable", "line": '${"s":1,"c":"st\tatus"}*00000000', "error": "BAD_FRAME"},
    {"name": "not a frame", "line": ">>> print('hello')", "none": True},
]
Path(__file__).with_name("frames.json").write_text(json.dumps(vectors, indent=1) + "\n")
