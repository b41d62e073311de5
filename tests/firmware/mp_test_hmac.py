# The firmware's HMAC-SHA256 on the real interpreter against the shared vectors
# (tests/vectors/hmac_sha256.json: RFC 4231 cases 1-7 and protocol-shaped frames signed by
# CPython's hmac). The random-input cross-check with CPython is tests/host/test_signing.py.
import sys
import json
from binascii import unhexlify, crc32
from mptest import req, eq, raises
from services.hmac_sha256 import HmacKey, hmac_sha256, hmac_sha256_hex, compare_hex, is_hex_mac


def _root():
    for p in sys.path:
        if p.endswith("/tests/firmware"):
            return p[: -len("/tests/firmware")]
    return "."


def _vectors():
    with open(_root() + "/tests/vectors/hmac_sha256.json") as f:
        return json.load(f)


def test_rfc4231_cases_1_to_7():
    cases = _vectors()["rfc4231"]
    eq([c["case"] for c in cases], [1, 2, 3, 4, 5, 6, 7])
    for c in cases:
        mac = hmac_sha256_hex(unhexlify(c["key_hex"]), unhexlify(c["data_hex"]))
        eq(len(mac), 64)
        n = c.get("truncate_bytes", 32) * 2
        eq(mac[:n], c["mac_hex"], "case %d" % c["case"])


def test_frame_vectors_sign_and_crc():
    frames = _vectors()["frames"]
    eq(len(frames), 7)
    for v in frames:
        key = HmacKey(unhexlify(v["key_hex"]))
        body = v["body"].encode()
        eq(key.hexdigest(body), v["mac_hex"], v["name"])
        inner = body + b"~" + v["mac_hex"].encode()
        eq("%08x" % (crc32(inner) & 0xFFFFFFFF), v["crc_hex"], v["name"])
        eq(v["frame"], "$" + inner.decode() + "*" + v["crc_hex"] + "\n")


def test_digest_is_32_bytes_and_key_object_reusable():
    k = HmacKey(b"Jefe")
    a = k.digest(b"what do ya want for nothing?")
    b = k.digest(b"what do ya want for nothing?")
    eq(len(a), 32)
    eq(a, b)  # no state leaks between messages
    eq(a, hmac_sha256(b"Jefe", b"what do ya want for nothing?"))
    eq(k.digest(b"x") != a, True)


def test_key_of_exactly_block_size_and_empty_key():
    # 64-byte key is used as is, 65-byte key is hashed: the two must differ from each other
    k64 = bytes(range(64))
    k65 = bytes(range(65))
    eq(hmac_sha256_hex(k64, b"m") != hmac_sha256_hex(k65, b"m"), True)
    eq(len(hmac_sha256_hex(b"", b"")), 64)


def test_str_refused():
    raises(TypeError, HmacKey, "key")
    raises(TypeError, HmacKey(b"k").digest, "text")


def test_compare_hex():
    a = "ab" * 32
    eq(compare_hex(a, a), True)
    eq(compare_hex(a, "ab" * 31 + "ac"), False)
    eq(compare_hex(a, "bb" + "ab" * 31), False)
    eq(compare_hex(a, a[:63]), False)
    eq(compare_hex(a, None), False)
    eq(compare_hex(a, a.encode()), False)
    eq(compare_hex("", ""), True)


def test_is_hex_mac():
    eq(is_hex_mac("0" * 64), True)
    eq(is_hex_mac("0123456789abcdef" * 4), True)
    eq(is_hex_mac("0123456789ABCDEF" * 4), False)
    eq(is_hex_mac("g" * 64), False)
    eq(is_hex_mac("0" * 63), False)
    eq(is_hex_mac("0" * 65), False)
    eq(is_hex_mac(None), False)
    eq(is_hex_mac(123), False)
