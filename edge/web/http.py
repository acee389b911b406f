"""HTTP plumbing of the console: JSON errors, body parsing, roles, login/CSRF checks, security headers."""
from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Callable
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("edge.web")

CONSOLE = web.AppKey("console", object)  # the WebConsole of this app
USER = web.RequestKey("user", object)  # who made the request (dict) or None
SESSION_COOKIE = "edge_sid"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_PATHS = {"/login", "/setup", "/healthz", "/api/login", "/api/setup", "/api/setup/status", "/favicon.ico"}
PUBLIC_PREFIXES = ("/static/",)  # code and texts of the login page; no data

# Scripts, styles and pictures only from the gateway itself; nothing inline, no framing, no plug-ins.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=()",
}


def json_response(data: Any, status: int = 200, **kw) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str),
                             **kw)


def error(status: int, message: str, **extra) -> web.Response:
    return json_response({"error": message, **extra}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 400/413/415 with a message a person understands."""
    ctype = request.content_type
    if ctype != "application/json":
        raise ApiError(415, f"send JSON (Content-Type: application/json), not {ctype or 'nothing'}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body too large (at most {request.app[CONSOLE].max_body // 1024} KB)")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def field(data: dict, name: str, typ: type | tuple = str, required: bool = True, default: Any = None,
          max_len: int = 2000) -> Any:
    v = data.get(name, default)
    if v is None:
        if required:
            raise ApiError(400, f"missing field {name!r}")
        return default
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ApiError(400, f"field {name!r} must be {tname}")
    if isinstance(v, str) and len(v) > max_len:
        raise ApiError(400, f"field {name!r} is too long (at most {max_len} characters)")
    return v


def requires(role: str) -> Callable:
    """Mark a handler as installer-only (`@requires("installer")`); the default is any logged-in user."""
    def mark(fn):
        fn._role = role
        return fn
    return mark


def public(fn):
    fn._public = True
    return fn


def user(request: web.Request) -> dict[str, Any]:
    return request[USER]


def _is_public(request: web.Request, handler) -> bool:
    return request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES) or getattr(handler, "_public",
                                                                                               False)


def _origin_ok(request: web.Request) -> bool:
    """A state change must come from a page of this gateway: Origin (or Referer) must name this host."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True  # non-browser clients send neither; browsers always send Origin on POST
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        return False
    return host == request.host


@web.middleware
async def errors_middleware(request: web.Request, handler):
    console = request.app[CONSOLE]
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = error(exc.status, str(exc), **exc.extra)
    except web.HTTPRequestEntityTooLarge:
        resp = error(413, f"request body too large (at most {console.max_body // 1024} KB)")
    except web.HTTPException as exc:
        if exc.status >= 400 and (request.path.startswith("/api/") or request.path == "/metrics"):
            resp = error(exc.status, exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:")
                         else exc.text)
        else:
            console.count(exc.status)
            raise
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("console request failed", extra={"path": request.path, "method": request.method})
        resp = error(500, "internal error (details are in the gateway log)")
    console.count(resp.status)
    return resp


@web.middleware
async def auth_middleware(request: web.Request, handler):
    console = request.app[CONSOLE]
    request[USER] = None
    auth = request.headers.get("Authorization", "")
    who = None
    if auth.lower().startswith("bearer "):
        who = await console.store.call(console.accounts.token_user, auth[7:].strip())
        if who is None:
            return error(401, "invalid or revoked API token")
    else:
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            who = await console.store.call(console.accounts.session, sid)
    request[USER] = who
    if not _is_public(request, handler) and who is None:
        if request.path.startswith("/api/") or request.path == "/metrics":
            return error(401, "login required")
        raise web.HTTPFound("/login")
    if request.method not in SAFE_METHODS:
        if not _origin_ok(request):
            return error(403, "cross-site request refused (Origin does not match this gateway)")
        if who is not None and who["via"] == "session":
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent, who["csrf"]):
                return error(403, "CSRF token missing or wrong (reload the page and try again)")
    role = getattr(handler, "_role", None)
    if role == "installer" and who is not None and who["role"] != "installer":
        return error(403, "this needs an installer account")
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    if request.path.startswith("/api/") or request.path in ("/metrics", "/", "/login", "/setup"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.secure or request.headers.get("X-Forwarded-Proto") == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
