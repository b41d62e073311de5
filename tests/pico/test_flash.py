"""`make flash` against an emulated Pico, as against a real board: compile, copy with mpremote,
reset (the USB port goes away and comes back), boot, provision. A second run copies nothing."""
from __future__ import annotations

from typing import Any

from .rig import DEVICE


def test_make_flash_copies_resets_boots_and_provisions(golden: dict[str, Any]) -> None:
    first = golden["first"]
    assert first["copied"] == len(first["files"]) > 30, first
    assert "Traceback" not in golden["first_out"], golden["first_out"]
    assert "provisioned" in first["provisioned"], first
    ident = golden["identify"]
    assert ident["board"] == "pico" and ident["device_id"] == DEVICE
    assert ident["auth"]["provisioned"] is True
    assert "NEVER FOR HUMAN USE" in ident["banner"]


def test_a_second_make_flash_copies_nothing_and_keeps_the_keys(golden: dict[str, Any]) -> None:
    second = golden["second"]
    assert second["copied"] == 0, second
    assert second["up_to_date"] == len(golden["first"]["files"]), second
    assert "already provisioned" in second["provisioned"], second
    assert "Traceback" not in golden["second_out"], golden["second_out"]
