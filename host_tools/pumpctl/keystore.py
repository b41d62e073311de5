"""Host keystore: per-device programmer keys and the last counter used for each role.

Layout: ``$PUMPCTL_HOME/keys/<device_id>.json`` (``PUMPCTL_HOME`` defaults to
``~/.config/pumpctl``). The ``keys`` directory is 0700 and each file 0600; a key file or
directory that other users can read or write is refused with an error that says how to fix it,
because anyone who reads a key can program the pump.

File format (JSON)::

    {"version": 1, "device_id": "sim-1",
     "keys": {"clinician": "<64 hex>", "patient": "<64 hex>"},
     "counters": {"clinician": 17, "patient": 4}}

``next_counter`` writes the new counter to disk (atomically: temp file, fsync, rename) before it
returns it, under an exclusive lock, so two pumpctl processes never sign with the same counter
and a crash never makes the host reuse one (reuse would be refused by the device as a replay).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, no POSIX modes
    fcntl = None  # type: ignore[assignment]

from .signing import COUNTER_MAX, KEY_BYTES, ROLES

FORMAT_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeystoreError(Exception):
    """Any keystore problem; the message is a sentence saying what is wrong and what to do."""


@dataclass
class DeviceKeys:
    device_id: str
    keys: dict[str, str]  # role -> 64 lowercase hex
    counters: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})

    def key_bytes(self, role: str) -> bytes:
        if role not in self.keys:
            raise KeystoreError(f"no key for role {role!r} (roles: {', '.join(ROLES)})")
        return bytes.fromhex(self.keys[role])


def default_home() -> Path:
    env = os.environ.get("PUMPCTL_HOME")
    if env:
        return Path(env).expanduser()
    return Path("~/.config/pumpctl").expanduser()


def generate_keys() -> dict[str, str]:
    """Fresh random keys, one per role: ``{"clinician": hex64, "patient": hex64}``."""
    while True:
        keys = {role: secrets.token_hex(KEY_BYTES) for role in ROLES}
        if len(set(keys.values())) == len(ROLES):  # astronomically unlikely to repeat; cheap to rule out
            return keys


def _validate_device_id(device_id: str) -> None:
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise KeystoreError(
            f"device id {device_id!r} is not usable as a key file name: use 1-64 characters "
            "from letters, digits, '.', '_' and '-', starting with a letter or digit")


def _validate_keys(keys: object) -> dict[str, str]:
    if not isinstance(keys, Mapping):
        raise KeystoreError("keys must be a mapping role -> hex key")
    extra = set(keys) - set(ROLES)
    if extra:
        raise KeystoreError(f"unknown key role(s) {sorted(extra)}; roles are {', '.join(ROLES)}")
    out: dict[str, str] = {}
    for role in ROLES:
        k = keys.get(role)
        if not isinstance(k, str) or not _HEX64.fullmatch(k):
            raise KeystoreError(f"key for {role} must be 64 lowercase hex characters (32 bytes)")
        if k == "0" * 64:
            raise KeystoreError(f"key for {role} is all zeros")
        out[role] = k
    if out["clinician"] == out["patient"]:
        raise KeystoreError("clinician and patient keys must differ")
    return out


def _validate_counters(counters: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for role in ROLES:
        n = counters.get(role, 0) if isinstance(counters, Mapping) else None
        if type(n) is not int or not 0 <= n <= COUNTER_MAX:
            raise KeystoreError(f"counter for {role} must be an integer 0..{COUNTER_MAX}, not {n!r}")
        out[role] = n
    return out


def _owned(p: Path, right_kind: Callable[[int], bool], wrong_kind: str) -> os.stat_result:
    """p's lstat, refusing a link or another kind of file (wrong_kind: the sentence why) and
    anything another user owns: keys are kept only in what this user alone controls."""
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not right_kind(st.st_mode):
        raise KeystoreError(wrong_kind)
    if st.st_uid != os.getuid():
        raise KeystoreError(f"{p} belongs to another user (uid {st.st_uid}); refusing to use it")
    return st


class Keystore:
    """Keys and counters for every device this user programs."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.dir = self.home / "keys"

    # --- paths and permissions ---------------------------------------------------------------
    def path(self, device_id: str) -> Path:
        _validate_device_id(device_id)
        return self.dir / f"{device_id}.json"

    def _ensure_dir(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self.dir.mkdir(mode=0o700)
        except FileExistsError:
            pass
        self._check_dir()

    def _check_dir(self) -> None:
        if os.name == "nt":  # pragma: no cover
            return
        st = _owned(self.dir, stat.S_ISDIR, f"{self.dir} is not a plain directory; refusing to keep keys there")
        if st.st_mode & 0o077:
            raise KeystoreError(
                f"{self.dir} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run `chmod 700 {self.dir}`")

    def _check_file(self, p: Path) -> None:
        if os.name == "nt":  # pragma: no cover
            return
        st = _owned(p, stat.S_ISREG, f"{p} is not a regular file; refusing to read keys from it")
        if st.st_mode & 0o077:
            raise KeystoreError(
                f"key file {p} is readable or writable by other users (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); anyone who reads it can program the pump. "
                f"Run `chmod 600 {p}` (and consider re-provisioning if others may have read it)")

    # --- read / write ----------------------------------------------------------------------
    def exists(self, device_id: str) -> bool:
        return self.path(device_id).exists()

    def devices(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json"))

    def save(self, device_id: str, keys: Mapping[str, str], counters: Mapping[str, int] | None = None) -> DeviceKeys:
        """Store keys for device_id (counters default to 0, as after provisioning).
        Replaces any previous entry atomically."""
        dk = DeviceKeys(device_id, _validate_keys(keys),
                        _validate_counters(counters if counters is not None else {}))
        p = self.path(device_id)
        self._ensure_dir()
        self._write(p, dk)
        return dk

    def load(self, device_id: str) -> DeviceKeys:
        p = self.path(device_id)
        if not p.exists():
            raise KeystoreError(
                f"no keys for device {device_id!r} in {self.dir}: provision the device "
                "(`pumpctl provision`) or copy its key file here")
        self._check_dir()
        self._check_file(p)
        try:
            data = json.loads(p.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise KeystoreError(f"key file {p} is unreadable or not JSON: {e}") from e
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise KeystoreError(f"key file {p} has an unknown format (expected version {FORMAT_VERSION})")
        if data.get("device_id") != device_id:
            raise KeystoreError(f"key file {p} is for device {data.get('device_id')!r}, not {device_id!r}")
        try:
            return DeviceKeys(device_id, _validate_keys(data.get("keys")), _validate_counters(data.get("counters")))
        except KeystoreError as e:
            raise KeystoreError(f"key file {p}: {e}") from e

    def _write(self, p: Path, dk: DeviceKeys) -> None:
        text = json.dumps({"version": FORMAT_VERSION, "device_id": dk.device_id,
                           "keys": dk.keys, "counters": dk.counters}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{dk.device_id}.", suffix=".tmp")
        try:
            # mkstemp creates the file 0600 already: the key is never briefly world-readable
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if hasattr(os, "O_DIRECTORY"):
            dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    @contextmanager
    def _locked(self, device_id: str) -> Iterator[None]:
        self._ensure_dir()
        if fcntl is None:  # pragma: no cover
            yield
            return
        lock_path = self.dir / f".{device_id}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- counters ----------------------------------------------------------------------------
    def next_counter(self, device_id: str, role: str) -> int:
        """The counter to put in the next frame for role: last used + 1, written to disk
        before it is returned."""
        if role not in ROLES:
            raise KeystoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._locked(device_id):
            dk = self.load(device_id)
            n = dk.counters[role] + 1
            if n > COUNTER_MAX:
                raise KeystoreError(f"counter for {role} on {device_id} is exhausted; re-provision the device")
            dk.counters[role] = n
            self._write(self.path(device_id), dk)
            return n

    def raise_counter(self, device_id: str, role: str, at_least: int) -> int:
        """Move role's last-used counter up to at_least (never down), e.g. to resume above the
        device's reported counter after restoring an old keystore. Returns the stored value."""
        if role not in ROLES:
            raise KeystoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if type(at_least) is not int or not 0 <= at_least <= COUNTER_MAX:
            raise KeystoreError(f"counter must be an integer 0..{COUNTER_MAX}, not {at_least!r}")
        with self._locked(device_id):
            dk = self.load(device_id)
            if at_least > dk.counters[role]:
                dk.counters[role] = at_least
                self._write(self.path(device_id), dk)
            return dk.counters[role]
