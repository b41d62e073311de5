"""`pumpctl pico ...`: an emulated Raspberry Pi Pico running the official MicroPython rp2
firmware, reached over its USB serial port like a real board. cli.build_parser() calls
register(sub, add).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Optional

from . import api, pico
from .alarm_codes import ALARM_CODES
from .cli_args import duration_arg
from .durations import format_ms
from .errors import UsageError
from .output import Out
from .progress import Progress

BOOT_BUDGET_S = 30  # of the Pico's own time: the firmware answers in about 2 s of it


def _dir(args: argparse.Namespace) -> Optional[Path]:
    return Path(args.dir) if getattr(args, "dir", None) else None


def _find(args: argparse.Namespace) -> pico.PicoInfo:
    return pico.find(_dir(args))


def _ns_text(t_ns: int) -> str:
    return f"{t_ns / 1e9:.3f} s"


def cmd_start(args: argparse.Namespace) -> Out:
    if not 0 <= args.battery <= 6600:
        raise UsageError(f"--battery is the battery voltage in mV, 0..6600, got {args.battery}")
    info = pico.start(_dir(args), fresh=args.fresh, idle_speed=args.speed, battery_mv=args.battery,
                      uf2=Path(args.uf2) if args.uf2 else None, hold_button=args.hold_button)
    held = ("\nThe bolus button is held: main.py leaves the REPL free (release it with "
            "`pumpctl pico button release`, then `pumpctl pico reset`).") if args.hold_button else ""
    return Out(info.d, f"Emulated Pico running the official MicroPython firmware ({info.d['uf2']}).\n"
                       f"USB serial port: {info.port}\n"
                       f"Flash it:  make flash PORT={info.port}\n"
                       f"Then:      pumpctl --port {info.port} status\n"
                       f"Its flash image {info.flash} is kept across stop and start (--fresh erases it).{held}\n"
                       f"{pico.DISCLAIMER}")


def cmd_stop(args: argparse.Namespace) -> Out:
    info = _find(args)
    pico.stop(info)
    return Out({"stopped": True, "dir": str(info.dir)}, f"Emulated Pico stopped; its flash is kept in {info.flash}.")


def cmd_status(args: argparse.Namespace) -> Out:
    st = pico.status(_find(args))
    s = st["stats"]
    mhz = float(s.get("mhz", s.get("effective_mhz", 0)))
    return Out(st, f"Emulated Pico running (pid {st['pid']}), USB port {st['port']} -> {st['pty']}.\n"
                   f"Emulated time {st['emulated_s']:.1f} s over {st['boots']} boot(s); last reset: {st['last_reset']}.\n"
                   f"Flash: {s.get('erases', '?')} sector erases and {s.get('programs', '?')} page programs since start; "
                   f"CPU about {mhz:.1f} MHz effective (a real Pico: 125).")


def cmd_port(args: argparse.Namespace) -> Out:
    info = _find(args)
    return Out({"port": info.port}, info.port)


def cmd_pins(args: argparse.Namespace) -> Out:
    d = pico.pins(_find(args))
    rows = []
    for name in ("step", "dir", "en", "led_red", "led_yellow", "button"):
        p = d[name]
        rows.append(f"  {name.upper():<10} GP{p['gpio']:<3} level {p['level']}  rising edges {p['rising']}, falling {p['falling']}")
    bz = d["buzzer"]
    sound = f"sounding {bz['freq_hz']:.0f} Hz" if bz["sounding"] else "silent"
    edges = sum(1 for h in bz["history"] if h[2] > 0)
    text = (f"Pins at emulated {_ns_text(d['t_ns'])} (boot {d['boots']}):\n" + "\n".join(rows) +
            f"\n  BUZZER     GP{bz['gpio']:<3} {sound}; {edges} tone changes recorded")
    return Out(d, text)


def cmd_button(args: argparse.Namespace) -> Out:
    info = _find(args)
    pico.button(info, args.action)
    said = {"press": "pressed and released", "hold": "held down", "release": "released"}[args.action]
    return Out({"button": args.action}, f"The patient bolus button was {said}.")


def cmd_battery(args: argparse.Namespace) -> Out:
    raw = pico.set_battery(_find(args), args.mv)
    return Out({"mv": args.mv, "adc_raw": raw},
               f"The battery reads {args.mv} mV now (ADC0 {raw} of 4095 through the divider); "
               "the firmware checks it once a minute.")


def _wait_answer(args: argparse.Namespace, info: pico.PicoInfo) -> Optional[float]:
    """Unless --no-wait: wait for the pump firmware to answer after a reset or power cut."""
    if args.no_wait:
        return None
    with Progress(BOOT_BUDGET_S * 1000, "waiting for the pump firmware to answer", enabled=not args.json) as bar:
        return pico.wait_firmware(info, BOOT_BUDGET_S, progress=bar.update)


def cmd_reset(args: argparse.Namespace) -> Out:
    info = _find(args)
    pico.reset(info)
    took = _wait_answer(args, info)
    return Out({"reset": True, "answered_after_s": took},
               "The emulated Pico was reset (RUN pin): its USB port went away and came back"
               + (f", and the pump firmware answered after {took:.1f} s." if took is not None else "."))


def cmd_power_cycle(args: argparse.Namespace) -> Out:
    down = duration_arg(args.down) / 1000 if args.down else 0.0
    if down > 600:
        raise UsageError("--down is wall-clock time the emulator stays off: at most 10m")
    info = pico.power_cut(_find(args), down)
    took = _wait_answer(args, info)
    answered = f" The pump firmware answered after {took:.1f} s." if took is not None else ""
    return Out(dict(info.d, answered_after_s=took),
               f"Power cut (nothing saved beyond what the flash held) and restored after {down:g} s. "
               f"USB port: {info.port}.{answered} A Pico has no battery-backed clock: set it with "
               f"`pumpctl --port {info.port} time sync`.")


def cmd_wait(args: argparse.Namespace) -> Out:
    ms = duration_arg(args.duration)
    if not 0 < ms <= 86_400_000:
        raise UsageError(f"wait for 1 ms .. 1 day of the Pico's time, got {args.duration}")
    code = args.until_alarm
    if code is not None:
        code = code.strip().upper().replace("-", "_")
        if code not in ALARM_CODES and code != "ANY":
            raise UsageError(f"--until-alarm takes an alarm code ({', '.join(sorted(ALARM_CODES))}) or any, "
                             f"got {args.until_alarm!r}")
    info = _find(args)
    if code is None:
        with Progress(ms, f"waiting for {format_ms(ms)} of the Pico's time", enabled=not args.json) as bar:
            wall = pico.wait(info, ms, bar.update)
        return Out({"waited_ms": ms, "wall_s": round(wall, 2)},
                   f"{format_ms(ms)} of the Pico's time passed in {wall:.1f} s.")
    seen: list[str] = []
    with api.connect(port=info.port, timeout=args.timeout, role=args.role) as pump:
        def raised() -> bool:
            active = [a["code"] for a in pump.status()["alarms"] if a.get("state") != "acknowledged"]
            seen[:] = active if code == "ANY" else [c for c in active if c == code]
            return bool(seen)
        done = [0]  # the Pico's ms at the last look (wait reports it to its progress)
        wall = 0.0
        if not raised():  # one already sounding: no wait
            label = f"waiting up to {format_ms(ms)} of the Pico's time for {'an alarm' if code == 'ANY' else code}"
            with Progress(ms, label, enabled=not args.json) as bar:
                def told(d: int) -> None:
                    done[0] = d
                    bar.update(d)
                wall = pico.wait(info, ms, told, until=raised)
    if seen:
        return Out({"alarm": seen[0], "raised": True, "waited_ms": done[0], "wall_s": round(wall, 2)},
                   f"{seen[0]} came within {format_ms(done[0])} of the Pico's time ({wall:.1f} s).")
    return Out({"alarm": None, "raised": False, "waited_ms": done[0], "wall_s": round(wall, 2)},
               f"No {'alarm' if code == 'ANY' else code} within {format_ms(ms)} of the Pico's time ({wall:.1f} s).")


def cmd_speed(args: argparse.Namespace) -> Out:
    if not args.factor >= 0:
        raise UsageError(f"speed must be 0 (as fast as it can) or more, got {args.factor}")
    r = pico.set_speed(_find(args), args.factor)
    return Out(r, f"While the emulated CPU sleeps, time now runs up to {args.factor:g} x real time"
                  + (" (0: as fast as it can)" if args.factor == 0 else "") + ".")


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    pc = sub.add_parser("pico", help="an emulated Raspberry Pi Pico running the official MicroPython firmware")
    psub = pc.add_subparsers(dest="pico_command", metavar="ACTION")

    def with_dir(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--dir", help="the emulated Pico's folder (default ~/.config/pumpctl/pico)")
        return sp

    s = with_dir(add(psub, "start", cmd_start, "start an emulated Pico and print its USB serial port"))
    s.add_argument("--fresh", action="store_true", help="erase its flash first: a new board with only MicroPython")
    s.add_argument("--speed", type=float, default=1.0,
                   help="how fast time may run while the CPU sleeps, x real time (default 1; 0 = as fast as it can)")
    s.add_argument("--uf2", help="the MicroPython firmware image (default: $PICO_UF2; the RPI_PICO v1.28.0 .uf2 from micropython.org)")
    s.add_argument("--hold-button", action="store_true", help="boot with the bolus button held: no auto-start, REPL free")
    s.add_argument("--battery", type=int, default=3700, metavar="MV",
                   help="battery voltage on ADC0 through the divider, mV (default 3700: a healthy cell)")
    with_dir(add(psub, "stop", cmd_stop, "stop the emulated Pico (its flash is kept)"))
    with_dir(add(psub, "status", cmd_status, "is it running, its port, emulated time, resets, flash wear"))
    with_dir(add(psub, "port", cmd_port, "print the USB serial port only (for make flash PORT=...)"))
    with_dir(add(psub, "pins", cmd_pins, "what the pump's pins did: STEP edges, EN/DIR, LEDs, buzzer PWM"))
    b = with_dir(add(psub, "button", cmd_button, "the patient bolus button on GP16"))
    b.add_argument("action", choices=("press", "hold", "release"), help="press (and let go), hold down, or release")
    ba = with_dir(add(psub, "battery", cmd_battery, "set the battery voltage seen on ADC0"))
    ba.add_argument("mv", type=int, help="battery voltage in mV (ERI at 3300, end of service at 3000)")
    rs = with_dir(add(psub, "reset", cmd_reset, "press RUN: reset the chip (flash kept), then wait for the firmware"))
    pw = with_dir(add(psub, "power-cycle", cmd_power_cycle, "pull the plug (nothing saved), plug it in again, wait for the firmware"))
    for sp_ in (rs, pw):
        sp_.add_argument("--no-wait", action="store_true",
                         help=f"do not wait for the pump firmware to answer (it gets {BOOT_BUDGET_S} s of the Pico's own time)")
    pw.add_argument("--down", help="how long it stays unplugged, wall clock (e.g. 5s)")
    w = with_dir(add(psub, "wait", cmd_wait, "wait until some of the Pico's own time has passed (it is not the wall clock's)"))
    w.add_argument("duration", help="e.g. 90s, 2m (with --until-alarm: the most to wait)")
    w.add_argument("--until-alarm", metavar="CODE", help="stop waiting once this alarm sounds (e.g. BATTERY_EOS, or any)")
    sp = with_dir(add(psub, "speed", cmd_speed, "change how fast idle time runs"))
    sp.add_argument("factor", type=float, help="how many times faster than real time idle time runs (1 = real time)")
