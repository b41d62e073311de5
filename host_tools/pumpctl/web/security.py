"""The web app's guard (docs/web.md, "Security model"): who may load a page and who may change
anything. Four checks, each a small function the app runs before every request:

- the address: the server only ever binds 127.0.0.1 (`check_bind`), and a request whose Host
  header is not this app's own (127.0.0.1:PORT or localhost:PORT) is refused (DNS rebinding:
  a page of another site that resolves its name to 127.0.0.1 sends its own Host);
- the token: a secret made at each launch (`secrets.token_urlsafe`), given once in the printed
  address (?token=...), exchanged for an HttpOnly, SameSite=Strict cookie; without it (cookie
  or query) nothing is served;
- cross-site requests: every request that changes anything is a POST that must carry the token
  in the X-Pumpctl-Token header (a form or a plain cross-site fetch cannot set a custom header
  without a CORS preflight, which this app never grants) and an Origin (or, without one, a
  Referer) of this app's own origin;
- roles: a patient token opens only the patient view and its requests.

Nothing here knows the pump. Research and education prototype: never for human use.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
COOKIE = "pumpctl_ui"
HEADER = "X-Pumpctl-Token"
CLINICIAN = "clinician"
PATIENT = "patient"
# What a patient token may open: its page, the status it shows, and the patient's requests.
PATIENT_PATHS = ("/patient", "/api/patient/", "/api/status", "/static/")
SAFE_METHODS = ("GET", "HEAD")
# Served with every response: scripts and styles only from this app, never framed, never cached.
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Refused(Exception):
    """A request the guard refuses: the HTTP status and one sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_bind(host: str) -> None:
    """Only the loopback address: the app holds a pump's keys, so it never listens elsewhere."""
    if host != LOOPBACK:
        raise ValueError(f"pumpctl ui listens on {LOOPBACK} only (it holds the pump's keys), not on {host!r}")


@dataclass
class Guard:
    """The checks for one launch: its port and its secrets (made here, never written to disk)."""
    port: int
    tokens: dict[str, str] = field(default_factory=lambda: {CLINICIAN: secrets.token_urlsafe(32),
                                                            PATIENT: secrets.token_urlsafe(32)})

    @property
    def hosts(self) -> tuple[str, ...]:
        return (f"{LOOPBACK}:{self.port}", f"localhost:{self.port}")

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(f"http://{h}" for h in self.hosts)

    def url(self, role: str = CLINICIAN, path: Optional[str] = None) -> str:
        """The address to open, with the token (printed once at launch)."""
        where = path or ("/patient" if role == PATIENT else "/")
        return f"http://{LOOPBACK}:{self.port}{where}?token={self.tokens[role]}"

    def role_of(self, token: Optional[str]) -> Optional[str]:
        """Which role a token is (compared in constant time), or None."""
        if not token:
            return None
        for role, secret in self.tokens.items():
            if hmac.compare_digest(token.encode(), secret.encode()):
                return role
        return None

    def check_host(self, host: Optional[str]) -> None:
        if (host or "").lower() not in self.hosts:
            raise Refused(400, f"this app answers only at http://{LOOPBACK}:{self.port}/ (Host {host!r} refused)")

    def check_request(self, method: str, path: str, host: Optional[str], cookie: Optional[str],
                      query_token: Optional[str], header_token: Optional[str],
                      origin: Optional[str], referer: Optional[str]) -> str:
        """The role this request acts as, or Refused. A query token is taken on GET only (the
        launch address); the app then moves it into the cookie and out of the address."""
        self.check_host(host)
        role = self.role_of(cookie) or (self.role_of(query_token) if method in SAFE_METHODS else None)
        if role is None:
            raise Refused(403, "open the address `pumpctl ui` printed (it carries this launch's token); "
                               "a page without it gets nothing")
        if role == PATIENT and not path.startswith(PATIENT_PATHS) and path != "/favicon.ico":
            raise Refused(403, "the patient's address opens the patient view only")
        if method in SAFE_METHODS:
            return role
        if method != "POST":
            raise Refused(405, f"{method} is not a request this app takes")
        if self.role_of(header_token) != role:
            raise Refused(403, "a request that changes anything needs this page's token in its "
                               f"{HEADER} header: reload the page from the address `pumpctl ui` printed")
        self.check_origin(origin, referer)
        return role

    def check_origin(self, origin: Optional[str], referer: Optional[str]) -> None:
        """Origin, else Referer, must be this app's own origin (a cross-site POST is refused)."""
        if origin:
            if origin.lower() in self.origins:
                return
            raise Refused(403, f"a request from another site ({origin}) may not change anything here")
        if referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}".lower() in self.origins:
                return
            raise Refused(403, "a request from another page may not change anything here")
        raise Refused(403, "a request that changes anything must say where it comes from (Origin): "
                           "send it from this app's own page")
