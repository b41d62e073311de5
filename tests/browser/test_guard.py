"""The web app's guard (pumpctl.web.security) without a browser or a pump: these run wherever
the Chromium tests skip. The browser tests check the same refusals over real HTTP."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "host_tools"))

from pumpctl.web import security  # noqa: E402
from pumpctl.web.security import Guard, Refused  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

PORT = 18123
HOST = f"127.0.0.1:{PORT}"
ORIGIN = f"http://{HOST}"


def guard() -> Guard:
    return Guard(PORT)


def ask(g: Guard, method: str = "GET", path: str = "/", host: str = HOST, cookie: str | None = None,
        query: str | None = None, header: str | None = None, origin: str | None = None,
        referer: str | None = None) -> str:
    return g.check_request(method, path, host, cookie, query, header, origin, referer)


def refused(fn: object, *a: object, **kw: object) -> Refused:
    with pytest.raises(Refused) as e:
        fn(*a, **kw)  # type: ignore[operator]
    return e.value


def test_each_launch_has_its_own_secrets_in_the_printed_address() -> None:
    a, b = guard(), guard()
    assert a.tokens["clinician"] != b.tokens["clinician"] and a.tokens["clinician"] != a.tokens["patient"]
    assert len(a.tokens["clinician"]) >= 40
    assert a.url() == f"http://127.0.0.1:{PORT}/?token={a.tokens['clinician']}"
    assert a.url("patient").startswith(f"http://127.0.0.1:{PORT}/patient?token=")


def test_it_binds_the_loopback_address_only() -> None:
    security.check_bind("127.0.0.1")
    for host in ("0.0.0.0", "::", "192.168.1.10", "localhost"):
        with pytest.raises(ValueError, match="127.0.0.1 only"):
            security.check_bind(host)


def test_no_token_no_page() -> None:
    g = guard()
    assert refused(ask, g).status == 403
    assert refused(ask, g, cookie="guess").status == 403
    assert ask(g, query=g.tokens["clinician"]) == "clinician"   # the launch address
    assert ask(g, cookie=g.tokens["clinician"]) == "clinician"  # then its cookie


def test_other_host_headers_are_refused() -> None:
    g = guard()
    tok = g.tokens["clinician"]
    assert ask(g, host=f"localhost:{PORT}", cookie=tok) == "clinician"
    for host in (f"evil.example:{PORT}", "127.0.0.1", f"127.0.0.1:{PORT + 1}", f"127.0.0.2:{PORT}", "", None):
        e = refused(ask, g, host=host, cookie=tok)
        assert e.status == 400, host


def test_a_post_needs_the_header_token_and_its_own_origin() -> None:
    g = guard()
    tok = g.tokens["clinician"]
    assert ask(g, "POST", "/api/stop", cookie=tok, header=tok, origin=ORIGIN) == "clinician"
    assert ask(g, "POST", "/api/stop", cookie=tok, header=tok, referer=ORIGIN + "/program") == "clinician"
    assert refused(ask, g, "POST", "/api/stop", cookie=tok, origin=ORIGIN).status == 403             # no header
    assert refused(ask, g, "POST", "/api/stop", cookie=tok, header="x" + tok, origin=ORIGIN).status == 403
    assert refused(ask, g, "POST", "/api/stop", cookie=tok, header=tok).status == 403                # no origin at all
    for origin in ("http://evil.example", f"http://127.0.0.1:{PORT + 1}", f"https://{HOST}", "null"):
        assert refused(ask, g, "POST", "/api/stop", cookie=tok, header=tok, origin=origin).status == 403, origin
    assert refused(ask, g, "POST", "/api/stop", cookie=tok, header=tok, referer="http://evil.example/x").status == 403
    # The query token opens pages (GET) only: a cross-site form cannot carry it into a POST.
    assert refused(ask, g, "POST", "/api/stop", query=tok, header=tok, origin=ORIGIN).status == 403
    assert refused(ask, g, "PUT", "/api/stop", cookie=tok, header=tok, origin=ORIGIN).status == 405


def test_the_patient_token_opens_the_patient_view_only() -> None:
    g = guard()
    pt = g.tokens["patient"]
    assert ask(g, path="/patient", cookie=pt) == "patient"
    assert ask(g, path="/api/status", cookie=pt) == "patient"
    assert ask(g, "POST", "/api/patient/bolus", cookie=pt, header=pt, origin=ORIGIN) == "patient"
    for path in ("/", "/program", "/bench", "/api/program", "/api/log"):
        assert refused(ask, g, path=path, cookie=pt).status == 403, path
    assert refused(ask, g, "POST", "/api/stop", cookie=pt, header=pt, origin=ORIGIN).status == 403
    # A patient page's header token does not stand in for the clinician's cookie, nor the reverse.
    ct = g.tokens["clinician"]
    assert refused(ask, g, "POST", "/api/stop", cookie=ct, header=pt, origin=ORIGIN).status == 403


def test_every_response_forbids_framing_and_foreign_scripts() -> None:
    csp = security.HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert security.HEADERS["X-Frame-Options"] == "DENY"
