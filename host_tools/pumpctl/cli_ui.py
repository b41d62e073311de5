"""`pumpctl ui`: start the local web app (pumpctl.web, docs/web.md) for the pump pumpctl would
talk to (the running virtual bench, --pico, or --port a real board), print its address with
this launch's token and open it in the browser. cli.build_parser() calls register(sub, add).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import sys
import webbrowser
from typing import Any, Callable

from .cli_args import opt
from .errors import UsageError
from .output import Out


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    u = add(sub, "ui", cmd_ui, "a local web app for this pump in the browser (status, programs, alarms, bench); "
                               "listens on 127.0.0.1 only")
    u.add_argument("--port-http", type=int, default=0, metavar="N",
                   help="the local port to listen on, 1024 to 65535 (default: any free one)")
    u.add_argument("--no-browser", action="store_true", help="print the address only; do not open a browser")


def cmd_ui(args: argparse.Namespace) -> Out:
    from .web.app import Server
    from .web.session import PumpSession
    port = args.port_http
    if port and not 1024 <= port <= 65535:
        raise UsageError(f"--port-http must be 1024 to 65535 (or 0: any free port), not {port}")
    pico = None
    if opt(args, "pico", False):
        from . import pico as picomod
        pico = picomod.find()
    session = PumpSession(port=opt(args, "port", None), bench_dir=opt(args, "bench_dir", None),
                          timeout=opt(args, "timeout", 5.0), pico=pico)
    try:
        try:
            server = Server(session, port)
        except OSError as e:
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {e.strerror} (give another --port-http)") from None
        url, patient = server.url("clinician"), server.url("patient")
        data = {"url": url, "patient_url": patient, "port": server.port, "pump": session.where()}
        if opt(args, "json", False):
            print(__import__("json").dumps(data), flush=True)
        else:
            print(f"pumpctl ui for {session.where()}\n"
                  f"  open:         {url}\n"
                  f"  patient view: {patient}\n"
                  "Each address carries this launch's secret: share it only with who may use it. "
                  "Ctrl-C stops the app.", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.http.server_close()
    finally:
        session.close()
    print("pumpctl ui stopped.", file=sys.stderr)
    return Out({"stopped": True, **data}, "")
