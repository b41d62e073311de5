"""`pumpctl ui`: the local web app (docs/web.md). Flask, on the one api.Pump of a PumpSession:
server-rendered pages (templates/), a small script of our own (static/app.js) that polls
/api/status every second and draws the plots, and one JSON endpoint per action (routes.py,
routes_lab.py). The guard (security.py) runs before every request.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import re
import threading
from typing import Any, Optional

from flask import Flask, Response, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .. import benchctl
from ..errors import DeviceError, PumpctlError
from ..render import DISCLAIMER
from . import security
from .session import PumpSession

_OVERRIDE = re.compile(r'override "([a-z_0-9]+)"')  # the override a soft limit's sentence names
PAGES = (  # (path, template, nav label, shown when)
    ("/", "status.html", "Status", "always"),
    ("/program", "program.html", "Program", "always"),
    ("/therapy", "therapy.html", "Boluses & refill", "always"),
    ("/setup", "setup.html", "Calibration & settings", "always"),
    ("/history", "history.html", "History & log", "always"),
    ("/bench", "bench.html", "Bench", "bench"),
    ("/pico", "pico.html", "Pico pins", "pico"),
    ("/patient", "patient.html", "Patient view", "always"),
)


def create_app(session: PumpSession, guard: security.Guard) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # fields in the order the pump gave them
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # µg and µL as they are
    app.extensions["pumpctl"] = {"session": session, "guard": guard}

    @app.before_request
    def _guard() -> Any:
        try:
            g.role = guard.check_request(
                request.method, request.path, request.headers.get("Host"), request.cookies.get(_cookie(guard)),
                request.args.get("token"), request.headers.get(security.HEADER),
                request.headers.get("Origin"), request.headers.get("Referer"))
        except security.Refused as e:
            return _refusal(e.status, "REFUSED", e.message)
        if request.method == "GET" and request.args.get("token"):
            # The launch address: the token moves into the cookie and out of the address bar.
            resp = redirect(request.path, code=303)
            resp.set_cookie(_cookie(guard), request.args["token"], httponly=True, samesite="Strict", path="/")
            return resp
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.update(security.HEADERS)
        return resp

    @app.errorhandler(PumpctlError)
    def _pumpctl_error(e: PumpctlError) -> Any:
        # A soft limit's sentence names the override it needs: the page offers it to confirm.
        needed = _OVERRIDE.findall(e.message) if isinstance(e, DeviceError) else []
        return _refusal(422, e.code, e.message, needed)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        return _refusal(e.code or 500, "HTTP", e.description or e.name)

    @app.errorhandler(Exception)
    def _internal(e: Exception) -> Any:
        app.logger.exception("request failed")
        return _refusal(500, "INTERNAL", f"the app failed on this request ({type(e).__name__}); see the terminal "
                                         "running `pumpctl ui`")

    def page(template: str) -> Any:
        def show() -> Any:
            return render_template(template, **_context(session, guard))
        show.__name__ = "page_" + template.split(".")[0]
        return show

    for path, template, _label, when in PAGES:
        if when == "bench" and not session.is_bench or when == "pico" and session.pico is None:
            continue
        app.add_url_rule(path, view_func=page(template))

    from . import routes, routes_lab
    app.register_blueprint(routes.bp)
    app.register_blueprint(routes_lab.bp)
    return app


def _cookie(guard: security.Guard) -> str:
    return f"{security.COOKIE}_{guard.port}"  # cookies ignore the port: one name per launch's port


def _context(session: PumpSession, guard: security.Guard) -> dict[str, Any]:
    role = g.role
    nav = [(p, label) for p, _t, label, when in PAGES
           if (role == security.CLINICIAN or p == "/patient")
           and (when == "always" or when == "bench" and session.is_bench or when == "pico" and session.pico is not None)]
    return {"token": guard.tokens[role], "role": role, "nav": nav, "path": request.path, "is_bench": session.is_bench,
            "is_pico": session.pico is not None, "device_id": session.device_id, "disclaimer": DISCLAIMER,
            "where": session.where(), "faults": benchctl.FAULTS, "events": benchctl.EVENTS}


def _refusal(status: int, code: str, message: str, overrides_needed: Optional[list[str]] = None) -> Any:
    """Every refusal is one sentence: JSON for the app's script, plain text for a page."""
    if request.path.startswith("/api/") or request.method != "GET":
        err: dict[str, Any] = {"code": code, "message": message}
        if overrides_needed:
            err["overrides_needed"] = overrides_needed
        return jsonify({"error": err}), status
    return Response(message + "\n", status=status, mimetype="text/plain")


class _Quiet(WSGIRequestHandler):
    """No line per request (the page polls every second); errors still go to the terminal."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


class Server:
    """The app on 127.0.0.1:port in a thread of its own (port 0: any free one)."""

    def __init__(self, session: PumpSession, port: int = 0, host: str = security.LOOPBACK) -> None:
        security.check_bind(host)
        self.session = session
        self.guard = security.Guard(port)
        self.app = create_app(session, self.guard)
        self.http: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=_Quiet)
        self.guard.port = self.http.server_port  # the port the system gave when 0 was asked
        self.thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.guard.port

    def url(self, role: str = security.CLINICIAN) -> str:
        return self.guard.url(role)

    def serve_forever(self) -> None:
        self.http.serve_forever()

    def start(self) -> "Server":
        self.thread = threading.Thread(target=self.http.serve_forever, name="pumpctl-ui", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        if self.thread:
            self.thread.join(5)
