"""After flashing: wait, with a bounded timeout, for the board that was reset to come back (the
same port, or a new node with the same USB serial number) and its firmware to answer
`identify`; then give a never-provisioned board its keys.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .flash_build import FlashError
from .flash_ports import PortLister, find_port, node_of, vidpid

COME_BACK_S = 30.0               # default wait for the board after the reset
Say = Callable[[str], None]      # progress text for people (one line each)


def quiet(_msg: str) -> None:
    pass


@dataclass
class Boot:
    """The board after the reset: where it answered, who it is, what provisioning did."""
    port: str
    device_id: str
    message: str
    waited_s: float


def _provision(link: Any, ident: dict[str, Any]) -> str:
    from .keystore import Keystore, generate_keys
    dev = ident["device_id"]
    ks = Keystore()
    if ident.get("auth", {}).get("provisioned"):
        if ks.exists(dev):
            return f"{dev} is already provisioned; its keys are in your keystore"
        return (f"{dev} holds keys this computer does not have: re-provision with the clinician key, "
                "or hold the bolus button at boot (docs/security.md)")
    keys = generate_keys()
    link.request("provision", {"keys": keys}, signed=False)
    ks.save(dev, keys)
    return f"{dev} provisioned; keys saved in your keystore"


def _noise_hint(noise: Sequence[bytes], path: str) -> str:
    text = [n.decode("utf-8", "replace").strip() for n in noise]
    text = [t for t in text if t]
    if any(">>>" in t or "MicroPython" in t or "raw REPL" in t for t in text):
        return ("it is at the MicroPython REPL, so main.py did not start the pump (the bolus button "
                "held at boot does that on purpose; otherwise main.py stopped with an error: see it with "
                f"mpremote connect {path} repl and press Ctrl-D)")
    if text:
        return (f"the last thing it printed was {text[-1][:160]!r} (see more with: "
                f"mpremote connect {path} repl)")
    return f"it printed nothing (see what it does with: mpremote connect {path} repl)"


def after_reset(port: str, timeout: float = COME_BACK_S, *, identity: Optional[dict[str, Any]] = None,
                node_before: Optional[tuple[Any, ...]] = None, progress: Optional[Say] = None,
                ports: Optional[PortLister] = None, provision: bool = True,
                poll_s: float = 0.2, started: Optional[float] = None) -> Boot:
    """Wait, at most `timeout` seconds, for the board that was reset on `port` to come back (the
    same path, or a new node with the same USB serial number) and its firmware to answer
    `identify`; then give a never-provisioned board its keys (running it again on a provisioned
    board whose keys are in the keystore changes nothing). Raises FlashError, one sentence,
    when it does not come back or no firmware replies."""
    from .errors import DeviceError, LinkFailed
    from .link import Link, LinkLost, PortUnavailable
    say = progress or quiet
    t0 = time.monotonic() if started is None else started
    deadline = t0 + timeout
    say(f"Waiting for the board on {port} to come back after the reset (up to {timeout:g} s)...")
    # A reset board goes away first (a real Pico re-enumerates, the emulator opens a new pty):
    # give it a moment to do so, so the old node is not mistaken for the new one.
    if node_before is not None:
        grace = min(deadline, time.monotonic() + min(2.0, timeout / 4))
        while time.monotonic() < grace and node_of(port) == node_before:
            time.sleep(0.05)
    announced: Optional[str] = None
    answered_on: Optional[str] = None     # a port that opened and stayed, but no firmware reply
    busy: Optional[str] = None
    noise: list[bytes] = []
    while True:
        now = time.monotonic()
        path = find_port(port, identity, ports)
        if path is not None:
            if path != announced:
                how = ""
                if path != port and identity:
                    how = f" as {path} (USB {vidpid(identity)}, serial number {identity.get('serial_number') or '-'})"
                say(f"The board is back{how or ' on ' + path} after {now - t0:.1f} s; asking its firmware who it is...")
                announced = path
            # One link for as long as the port stays: the same identify frame is sent again every
            # `attempt` seconds (the firmware answers a repeat from its reply cache), so a board
            # still booting does not collect a backlog of distinct requests.
            attempt = max(0.2, min(1.0, deadline - now))
            try:
                link = Link(path, timeout=attempt, retries=max(0, int((deadline - now) / attempt) - 1))
            except PortUnavailable as e:
                busy = e.message if os.path.exists(path) else None
            else:
                try:
                    with link:
                        try:
                            ident = link.request("identify")
                        finally:
                            noise.extend(link.noise)
                        try:
                            msg = _provision(link, ident) if provision else f"{ident['device_id']} answered"
                        except DeviceError as e:
                            raise FlashError(f"the firmware on {path} refused the new keys: {e.message} "
                                             f"[{e.code}]") from None
                        except LinkFailed as e:
                            raise FlashError(f"the link to {path} failed while provisioning ({e.message}); the board "
                                             "may or may not hold new keys: run make flash again (if it then says "
                                             "the board holds keys this computer does not have, see docs/security.md)") from None
                        return Boot(path, ident.get("device_id", "?"), msg, time.monotonic() - t0)
                except LinkLost:
                    pass  # hung up: the old board going away, or the new one still enumerating
                except DeviceError as e:
                    raise FlashError(f"the firmware on {path} refused identify: {e.message} [{e.code}]") from None
                except LinkFailed:
                    answered_on = path  # opened and stayed, but no frame came back
                except (KeyError, TypeError):
                    raise FlashError(f"the firmware on {path} sent an identify reply without a device id: "
                                     "is it this project's firmware?") from None
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    if answered_on is not None:
        raise FlashError(f"the board on {answered_on} answered after the reset but no pump firmware replied "
                         f"within {timeout:g} s: {_noise_hint(noise, answered_on)}")
    if busy is not None:
        raise FlashError(f"the board came back on {announced} but it cannot be opened within {timeout:g} s "
                         f"({busy}): close any program using it (Thonny, screen, pumpctl watch)")
    if announced is not None and find_port(port, identity, ports) is None:
        raise FlashError(f"the board came back on {announced} after the reset but went away again within "
                         f"{timeout:g} s: check the USB cable and the power (a board that resets over and over "
                         "may have firmware that crashes at boot: hold the bolus button while it boots, "
                         "docs/hardware.md)")
    where = port if not identity else f"{port} (USB {vidpid(identity)}, serial number {identity.get('serial_number') or '-'})"
    raise FlashError(f"the board on {where} did not come back after the reset within {timeout:g} s: check the "
                     "USB cable (a charge-only cable carries no data) and plug it in again, or hold BOOTSEL "
                     "while plugging it in and copy the MicroPython UF2 again (docs/hardware.md)")


def provision_after_boot(port: str, wait_s: float = COME_BACK_S) -> str:
    """Once the firmware answers, give a never-provisioned board its keys (running it again on a
    provisioned board whose keys are in the keystore changes nothing). Returns the outcome."""
    return after_reset(port, wait_s).message
