# StateStore: checksummed A/B slots, status after damage, refusal of bad input, write cost.
import os
from mptest import eq, raises, req
from sim.blockdev import BlockDev, mount_lfs
from services.storage import StateStore, check_json

MP = "/sst"


def _fresh(blocks=32):
    d = BlockDev(block_count=blocks)
    mount_lfs(d, MP)
    return d


def _state(n=1):
    return {"program": {"mode": "flex", "steps": [[0, 400000 + n], [1080, 600000]]},
            "calibration": {"pl_per_step": 812345},
            "reservoir": {"nl": 18000000 - n, "conc_ug_ml": 2000},
            "counters": {"day": 9000 + n, "ms": 123456, "delivered_ng": n * 1000},
            "settings": {"low_res_nl": 2000000, "name": "bench-1", "on": True, "x": None}}


def test_missing_when_nothing_saved():
    _fresh()
    s = StateStore(MP)
    eq(s.load(), None)
    eq(s.status, "missing")


@req("SR-033")
def test_round_trip_and_reopen():
    _fresh()
    s = StateStore(MP)
    eq(s.save(_state(1)), True)
    s2 = StateStore(MP)  # as after a reboot
    eq(s2.load(), _state(1))
    eq(s2.status, "ok")
    eq(s2.generation, 1)
    eq(s2.save(_state(2)), True)
    eq(StateStore(MP).load(), _state(2))
    eq(sorted(os.listdir(MP)), ["state.a", "state.b"])


def test_unchanged_state_is_not_written():
    d = _fresh()
    s = StateStore(MP)
    s.save(_state(1))
    ops = d.stats.ops
    eq(s.save(_state(1)), False)
    eq(d.stats.ops, ops)
    eq(s.writes, 1)


def test_generations_alternate_slots_and_keep_previous():
    _fresh()
    s = StateStore(MP)
    for n in range(1, 6):
        s.save(_state(n))
    eq(s.generation, 5)
    # the other slot still holds generation 4, intact
    a = open(MP + "/state.a", "rb").read()
    b = open(MP + "/state.b", "rb").read()
    eq(sorted([a[4], b[4]]), [4, 5])


def _damage(path, at):
    data = bytearray(open(path, "rb").read())
    data[at] ^= 0x40
    with open(path, "wb") as f:
        f.write(data)


def _newest_path():
    a = open(MP + "/state.a", "rb").read()
    b = open(MP + "/state.b", "rb").read()
    return MP + ("/state.a" if a[4] > b[4] else "/state.b")


@req("SR-033")
def test_damaged_newest_slot_recovers_previous_state():
    _fresh()
    s = StateStore(MP)
    s.save(_state(1))
    s.save(_state(2))
    _damage(_newest_path(), 40)  # one bit in the payload
    s2 = StateStore(MP)
    eq(s2.load(), _state(1))
    eq(s2.status, "recovered")
    # the next save goes over the damaged slot, not over the good one
    s2.save(_state(3))
    s3 = StateStore(MP)
    eq(s3.load(), _state(3))
    eq(s3.status, "ok")
    eq(s3.generation, 2)


@req("SR-033")
def test_all_slots_damaged_is_corrupt_not_garbage():
    _fresh()
    s = StateStore(MP)
    s.save(_state(1))
    s.save(_state(2))
    _damage(MP + "/state.a", 20)
    _damage(MP + "/state.b", 2)  # magic
    s2 = StateStore(MP)
    eq(s2.load(), None)
    eq(s2.status, "corrupt")


def test_truncated_and_empty_slot_files_are_rejected():
    _fresh()
    s = StateStore(MP)
    s.save(_state(1))
    data = open(MP + "/state.a", "rb").read()
    with open(MP + "/state.a", "wb") as f:
        f.write(data[:-3])
    with open(MP + "/state.b", "wb") as f:
        pass
    s2 = StateStore(MP)
    eq(s2.load(), None)
    eq(s2.status, "corrupt")


def test_bad_input_refused_and_nothing_written():
    d = _fresh()
    s = StateStore(MP)
    s.save(_state(1))
    ops = d.stats.ops
    for bad in ([1, 2], "x", None, {1: 2}, {"a": 1.5}, {"a": {1, 2}}, {"a": b"xy"},
                {"a": 2 ** 30}, {"a": -(2 ** 30)}, {"a": object()}, {"a": "x" * 9000}):
        raises(ValueError, s.save, bad)
    eq(d.stats.ops, ops)
    eq(StateStore(MP).load(), _state(1))
    raises(ValueError, StateStore, "")
    raises(ValueError, StateStore, None)


def test_check_json_limits():
    check_json({"a": [1, -5, "s", True, None, {"b": (2 ** 30) - 1}]})
    raises(ValueError, check_json, [[[[[[[[[[1]]]]]]]]]])


def test_write_cost_of_a_typical_state_is_one_inline_commit():
    # A typical state is well under littlefs's 512-byte inline limit: saving it must not
    # erase a block (except for the occasional metadata compaction) and costs < 1 KB.
    d = _fresh()
    s = StateStore(MP)
    s.save(_state(0))
    b0, e0 = d.stats.bytes_written, d.stats.blocks_erased
    for n in range(1, 41):
        s.save(_state(n))
    per_save = (d.stats.bytes_written - b0) // 40
    erases = d.stats.blocks_erased - e0
    if per_save > 1024:
        raise AssertionError("%d bytes written per save" % per_save)
    if erases > 8:
        raise AssertionError("%d erases for 40 saves" % erases)


@req("SR-033")
def test_unreadable_slot_is_corrupt_not_a_crash():
    _fresh()
    os.mkdir(MP + "/state.a")  # opening it fails with an OSError
    s = StateStore(MP)
    eq(s.load(), None)
    eq(s.status, "corrupt")


def test_root_directory_is_created():
    _fresh()
    s = StateStore(MP + "/st")
    s.save({"a": 1})
    eq(StateStore(MP + "/st").load(), {"a": 1})
