"""The dashboard's HTTP server (stdlib ``ThreadingHTTPServer``): a static page and a small JSON API.

Routes::

    GET  /               the page (index.html, app.js, app.css shipped as package data)
    GET  /api/state      the aggregated fleet state (:class:`~lwd.fleet.ops.dashboard.state.FleetState`)
    POST /api/action     pin | unpin | promote | rollback | pause | resume, only with control
                         enabled and the token

Security model (see docs/dashboard.md):

* binds 127.0.0.1 by default; a non-loopback host is refused unless ``allow_remote`` is set;
* requests whose ``Host`` header is not this server's loopback name/port are refused (403), which
  stops DNS-rebinding pages from reading the API through the user's browser;
* read-only by default; ``POST /api/action`` needs a server started with a token and the request's
  ``X-LWD-Token`` header equal to it (constant-time comparison), else 403. A cross-site page
  cannot set that header without a CORS preflight, which this server never grants; a request with
  a foreign ``Origin`` is refused as well;
* the body is size-limited JSON, validated field by field (400 on anything unexpected);
* strict Content-Security-Policy (no inline script, no external origin), no caching.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from lwd.fleet.ops.dashboard.sources import FleetPaths
from lwd.fleet.ops.dashboard.state import FleetState
from lwd.utils.errors import ConfigError, LwdError

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-LWD-Token"
ACTIONS = ("pin", "unpin", "promote", "rollback", "pause", "resume")
"""What ``POST /api/action`` accepts (the operator actions of :mod:`lwd.fleet.ops.operator`)."""
MAX_BODY = 4096
ROBOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_remote: bool) -> None:
    """Refuse to serve on a non-loopback address unless explicitly allowed."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"refusing to serve the dashboard on non-loopback host {host!r}: anyone who can reach it "
            "could read the fleet state; bind 127.0.0.1 (default) or pass --allow-remote"
        )


def validate_action(body: Any) -> dict[str, Any]:
    """Check an action request body; returns the keyword arguments of ``operator_action``.

    ``{"action": one of ACTIONS, "version": int >= 0 (pin needs one), "robots": [robot ids] (pin and
    unpin need at least one), "reason": str <= 500 chars}``; no other keys. Whether the version and
    robots exist is checked by ``operator_action`` (400 with its message).
    """
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    extra = set(body) - {"action", "version", "robots", "reason"}
    if extra:
        raise ValueError(f"unknown field(s): {', '.join(sorted(extra))}")
    action = body.get("action")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        raise ValueError("version must be a non-negative integer")
    if version is None and action == "pin":
        raise ValueError("pin needs a version")
    robots = body.get("robots")
    if robots is not None:
        if not isinstance(robots, list) or len(robots) > 1000:
            raise ValueError("robots must be a list of robot ids")
        bad = [r for r in robots if not isinstance(r, str) or not ROBOT_ID.match(r)]
        if bad:
            raise ValueError(f"invalid robot id {str(bad[0])[:70]!r}")
        robots = list(dict.fromkeys(robots)) or None
    if action in ("pin", "unpin") and not robots:
        raise ValueError(f"{action} needs at least one robot id")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ValueError("reason must be a string of at most 500 characters")
    return {"action": action, "version": version, "robots": robots, "reason": reason}


class DashboardServer(ThreadingHTTPServer):
    """One dashboard: ``state`` for ``/api/state``, ``token`` (``None`` = read-only) for actions."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, paths: FleetPaths, host: str = "127.0.0.1", port: int = 0, *,
                 token: str | None = None, allow_remote: bool = False, robot_timeout_s: float = 30.0,
                 refresh_s: float = 1.0, cache_s: float = 0.5) -> None:  # fmt: skip
        """``cache_s``: ``/api/state`` is rebuilt at most this often, however many pages poll."""
        check_bind_host(host, allow_remote)
        if token is not None and len(token) < 16:
            raise ConfigError("the dashboard token must have at least 16 characters")
        self.paths = paths
        self.token = token
        self.allow_remote = allow_remote
        self.state = FleetState(paths, robot_timeout_s, min_interval_s=cache_s,
                                control_enabled=token is not None, refresh_s=refresh_s)  # fmt: skip
        self.action_lock = threading.Lock()
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), DashboardHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def allowed_hosts(self) -> set[str]:
        """``Host`` header values this server answers to."""
        names = {"127.0.0.1", "localhost", "[::1]", self.server_address[0], f"[{self.server_address[0]}]"}
        return {f"{n}:{self.port}" for n in names} | (names if self.port == 80 else set())

    def server_close(self) -> None:
        super().server_close()
        self.state.close()

    def run_action(self, req: dict[str, Any]) -> dict[str, Any]:
        from lwd.fleet.ops.operator import operator_action

        with self.action_lock:
            return operator_action(self.paths.fleet_root, req["action"], version=req["version"],
                                   robots=req["robots"], actor="dashboard", reason=req["reason"],
                                   registry=self.paths.registry())  # fmt: skip


def new_token() -> str:
    return secrets.token_urlsafe(24)


class DashboardHandler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "lwd-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ responses
    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj, default=str).encode(), "application/json")

    def _error(self, code: int, message: str) -> None:
        self._json(code, {"ok": False, "error": message})

    def _host_ok(self) -> bool:
        if self.server.allow_remote:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.allowed_hosts():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return False
        return True

    # ------------------------------------------------------------------ GET
    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/state":
            try:
                self._json(HTTPStatus.OK, self.server.state.get())
            except Exception as e:  # never leave the page without an answer
                log.exception("building the dashboard state failed")
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}")
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if path in STATIC:
            name, ctype = STATIC[path]
            data = resources.files("lwd.fleet.ops.dashboard").joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, data, ctype)
            return
        self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    # ------------------------------------------------------------------ POST
    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        if not self._host_ok():
            return
        if self.path.split("?", 1)[0] != "/api/action":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        srv = self.server
        if srv.token is None:
            self._error(
                HTTPStatus.FORBIDDEN, "read-only dashboard: start it with --allow-control for actions"
            )
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/").split("://", 1)[-1].lower() not in srv.allowed_hosts():
            self._error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
            return
        given = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), srv.token.encode()):
            self._error(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER} header")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        if length < 0 or length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY} bytes")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json")
            return
        try:
            req = validate_action(json.loads(self.rfile.read(length) or b"null"))
        except ValueError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        try:
            result = srv.run_action(req)
        except LwdError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        except Exception as e:
            log.exception("dashboard action %s failed", req["action"])
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}")
            return
        log.info(
            "dashboard action %s version=%s robots=%s: %s",
            req["action"],
            req["version"],
            req["robots"],
            result,
        )
        self._json(HTTPStatus.OK, {"ok": True, "result": result})
