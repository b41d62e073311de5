"""pumpctl.keystore: layout, permissions, refusal of unsafe files, monotonic counters."""
from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl.keystore import Keystore, KeystoreError, default_home, generate_keys  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def ks(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "home")


def test_default_home_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "h"))
    assert default_home() == tmp_path / "h"
    assert Keystore().dir == tmp_path / "h" / "keys"
    monkeypatch.delenv("PUMPCTL_HOME")
    assert default_home() == Path("~/.config/pumpctl").expanduser()


def test_generate_keys():
    k = generate_keys()
    assert set(k) == {"clinician", "patient"}
    assert all(len(v) == 64 and int(v, 16) >= 0 and v == v.lower() for v in k.values())
    assert k["clinician"] != k["patient"]
    assert generate_keys() != k


def test_save_load_round_trip_and_modes(ks):
    keys = generate_keys()
    ks.save("sim-0001", keys)
    p = ks.path("sim-0001")
    assert p == ks.home / "keys" / "sim-0001.json"
    assert _mode(ks.dir) == 0o700
    assert _mode(p) == 0o600
    dk = ks.load("sim-0001")
    assert dk.keys == keys
    assert dk.counters == {"clinician": 0, "patient": 0}
    assert dk.key_bytes("clinician") == bytes.fromhex(keys["clinician"])
    data = json.loads(p.read_text())
    assert data["version"] == 1 and data["device_id"] == "sim-0001"
    assert ks.devices() == ["sim-0001"]
    assert ks.exists("sim-0001") and not ks.exists("sim-0002")


def test_key_file_readable_by_others_is_refused(ks):
    ks.save("d1", generate_keys())
    p = ks.path("d1")
    for mode in (0o644, 0o640, 0o604, 0o660, 0o602):
        os.chmod(p, mode)
        with pytest.raises(KeystoreError, match="chmod 600"):
            ks.load("d1")
        with pytest.raises(KeystoreError, match="other users"):
            ks.next_counter("d1", "clinician")
    os.chmod(p, 0o600)
    assert ks.load("d1").counters["clinician"] == 0  # the refused next_counter changed nothing


def test_open_keys_directory_is_refused(ks):
    ks.save("d1", generate_keys())
    os.chmod(ks.dir, 0o755)
    with pytest.raises(KeystoreError, match="chmod 700"):
        ks.load("d1")
    with pytest.raises(KeystoreError, match="chmod 700"):
        ks.save("d2", generate_keys())
    os.chmod(ks.dir, 0o700)
    ks.load("d1")


def test_symlinked_key_file_is_refused(ks, tmp_path):
    ks.save("real", generate_keys())
    os.symlink(ks.path("real"), ks.dir / "alias.json")
    with pytest.raises(KeystoreError, match="not a regular file"):
        ks.load("alias")


def test_missing_and_damaged_files(ks):
    with pytest.raises(KeystoreError, match="no keys for device 'nope'.*provision"):
        ks.load("nope")
    ks.save("d1", generate_keys())
    p = ks.path("d1")
    for text, what in [("{", "not JSON"), ('{"version": 2}', "unknown format"),
                       ('{"version": 1, "device_id": "other"}', "for device 'other'"),
                       ('{"version": 1, "device_id": "d1", "keys": {"clinician": "zz"}}', "64 lowercase hex"),
                       ('{"version": 1, "device_id": "d1", "keys": {"clinician": "%s", "patient": "%s"},'
                        ' "counters": {"clinician": -1, "patient": 0}}' % ("ab" * 32, "cd" * 32), "counter")]:
        p.write_text(text)
        with pytest.raises(KeystoreError, match=what):
            ks.load("d1")


def test_bad_input_to_save_changes_nothing(ks):
    good = generate_keys()
    ks.save("d1", good)
    before = ks.path("d1").read_bytes()
    for keys, what in [({"clinician": "ab" * 32}, "patient"),
                       ({"clinician": "AB" * 32, "patient": "cd" * 32}, "lowercase"),
                       ({"clinician": "ab" * 32, "patient": "ab" * 32}, "differ"),
                       ({"clinician": "00" * 32, "patient": "cd" * 32}, "zeros"),
                       ({"clinician": "ab" * 32, "patient": "cd" * 32, "root": "ef" * 32}, "unknown")]:
        with pytest.raises(KeystoreError, match=what):
            ks.save("d1", keys)
    assert ks.path("d1").read_bytes() == before
    for dev in ("", "../x", "a/b", ".hidden", "x" * 65, "pümp"):
        with pytest.raises(KeystoreError, match="device id"):
            ks.save(dev, good)
    assert list(ks.dir.glob("*.tmp")) == []


def test_next_counter_is_monotonic_and_persisted(ks):
    ks.save("d1", generate_keys())
    got = [ks.next_counter("d1", "clinician") for _ in range(5)]
    assert got == [1, 2, 3, 4, 5]
    assert ks.next_counter("d1", "patient") == 1
    # persisted before returning: a new Keystore object (new pumpctl process) continues
    again = Keystore(ks.home)
    assert again.load("d1").counters == {"clinician": 5, "patient": 1}
    assert again.next_counter("d1", "clinician") == 6
    assert _mode(ks.path("d1")) == 0o600
    with pytest.raises(KeystoreError, match="role"):
        ks.next_counter("d1", "admin")


def test_raise_counter_never_lowers(ks):
    ks.save("d1", generate_keys())
    assert ks.raise_counter("d1", "clinician", 40) == 40
    assert ks.raise_counter("d1", "clinician", 10) == 40
    assert ks.next_counter("d1", "clinician") == 41
    with pytest.raises(KeystoreError, match="counter"):
        ks.raise_counter("d1", "clinician", 2**30)


def test_counter_exhaustion_is_an_error(ks):
    ks.save("d1", generate_keys(), counters={"clinician": 2**30 - 1, "patient": 0})
    with pytest.raises(KeystoreError, match="exhausted; re-provision"):
        ks.next_counter("d1", "clinician")
    assert ks.load("d1").counters["clinician"] == 2**30 - 1


def test_resave_resets_counters(ks):
    ks.save("d1", generate_keys())
    ks.next_counter("d1", "clinician")
    ks.save("d1", generate_keys())  # re-provisioned: the device reset its counters too
    assert ks.load("d1").counters == {"clinician": 0, "patient": 0}


def _take(home: str, n: int, q) -> None:
    k = Keystore(home)
    q.put([k.next_counter("d1", "patient") for _ in range(n)])


def test_concurrent_processes_never_share_a_counter(ks):
    ks.save("d1", generate_keys())
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(ks.home), 25, q)) for _ in range(4)]
    for p in procs:
        p.start()
    got = []
    for _ in procs:
        got += q.get(timeout=60)
    for p in procs:
        p.join(timeout=60)
    assert sorted(got) == list(range(1, 101))
    assert ks.load("d1").counters["patient"] == 100
