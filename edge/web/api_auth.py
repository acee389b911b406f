"""Login, logout, first-start setup, own account, users and API tokens."""
from __future__ import annotations

import logging

from aiohttp import web

from .auth import AuthError, check_name, check_role
from .http import CONSOLE, SESSION_COOKIE, ApiError, field, json_response, public, read_json, requires, user

log = logging.getLogger("edge.web.auth")


def _client_ip(request: web.Request) -> str:
    return request.remote or "?"


def _set_session_cookie(request: web.Request, resp: web.Response, sid: str) -> None:
    console = request.app[CONSOLE]
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict", secure=console.secure_cookies,
                    path="/", max_age=int(console.config.web.session_hours * 3600))


def _me(who: dict, console) -> dict:
    return {"name": who["name"], "role": who["role"], "csrf": who.get("csrf"),
            "language": console.config.web.language, "timezone": console.config.gateway.timezone, "gateway": console.config.gateway.name or
            console.config.gateway.id}


@public
async def login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    data = await read_json(request)
    name = field(data, "name", max_len=64)
    password = field(data, "password", max_len=256)
    ip = _client_ip(request)
    keys = (f"ip:{ip}", f"user:{name.lower()}")
    wait = console.throttle.retry_after(*keys)
    if wait:
        log.warning("login throttled", extra={"ip": ip, "user": name, "retry_after_s": wait})
        return json_response({"error": f"too many failed logins; try again in {wait} s", "retry_after_s": wait},
                             status=429, headers={"Retry-After": str(wait)})
    who = await console.accounts.check_login_async(name, password)
    if who is None:
        console.throttle.failed(*keys)
        log.warning("login failed", extra={"ip": ip, "user": name})
        raise ApiError(401, "wrong user name or password")
    console.throttle.succeeded(f"user:{name.lower()}")
    sid, csrf = await console.store.call(console.accounts.new_session, who["name"], ip)
    log.info("login", extra={"ip": ip, "user": who["name"], "role": who["role"]})
    resp = json_response(_me(who | {"csrf": csrf}, console))
    _set_session_cookie(request, resp, sid)
    return resp


async def logout(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await console.store.call(console.accounts.end_session, sid)
    resp = json_response({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


async def me(request: web.Request) -> web.Response:
    return json_response(_me(user(request), request.app[CONSOLE]))


async def change_password(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    who = user(request)
    if who["via"] != "session":
        raise ApiError(400, "API tokens have no password")
    data = await read_json(request)
    ok = await console.accounts.check_login_async(who["name"], field(data, "old", max_len=256))
    if ok is None:
        raise ApiError(400, "the current password is wrong")
    new = field(data, "new", max_len=256)
    try:
        pw_hash = await console.accounts.hash_async(new)
        await console.store.call(console.accounts.set_password, who["name"], new, pw_hash)
    except AuthError as exc:
        raise ApiError(400, str(exc)) from None
    sid, csrf = await console.store.call(console.accounts.new_session, who["name"], _client_ip(request))
    resp = json_response({"ok": True, "csrf": csrf})
    _set_session_cookie(request, resp, sid)
    return resp


@public
async def setup_status(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    users = await console.store.call(console.accounts.count_users)
    token = request.query.get("token", "")
    valid = users == 0 and await console.store.call(console.accounts.setup_token_valid, token)
    return json_response({"needed": users == 0, "token_valid": bool(valid)})


@public
async def setup(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    data = await read_json(request)
    ip = _client_ip(request)
    keys = (f"ip:{ip}", "setup")
    wait = console.throttle.retry_after(*keys)
    if wait:
        return json_response({"error": f"too many attempts; try again in {wait} s"}, status=429,
                             headers={"Retry-After": str(wait)})
    password, token = field(data, "password", max_len=256), field(data, "token", max_len=200)
    try:
        if not await console.store.call(console.accounts.setup_token_valid, token):
            pw_hash = None  # no scrypt work for a bad token; complete_setup() explains what is wrong
        else:
            pw_hash = await console.accounts.hash_async(password)
        who = await console.store.call(console.accounts.complete_setup, token,
                                       field(data, "name", max_len=64), password, pw_hash)
    except AuthError as exc:
        if "setup link" in str(exc):
            console.throttle.failed(*keys)
        raise ApiError(400, str(exc)) from None
    log.warning("first installer account created from the setup link", extra={"user": who["name"], "ip": ip})
    sid, csrf = await console.store.call(console.accounts.new_session, who["name"], ip)
    resp = json_response(_me(who | {"csrf": csrf}, console))
    _set_session_cookie(request, resp, sid)
    return resp


# ---- users and tokens (installer) --------------------------------------------------------------------------
@requires("installer")
async def list_users(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return json_response({"users": await console.store.call(console.accounts.users)})


@requires("installer")
async def add_user(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    data = await read_json(request)
    name, role = field(data, "name", max_len=64), field(data, "role", max_len=20)
    password = field(data, "password", max_len=256)
    try:
        check_name(name)
        check_role(role)
        pw_hash = await console.accounts.hash_async(password)
        u = await console.store.call(console.accounts.add_user, name, role, password, pw_hash)
    except AuthError as exc:
        raise ApiError(400, str(exc)) from None
    log.info("console user added", extra={"by": user(request)["name"], "user": u["name"], "role": u["role"]})
    return json_response(u, status=201)


@requires("installer")
async def delete_user(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    name = request.match_info["name"]
    try:
        await console.store.call(console.accounts.delete_user, name)
    except AuthError as exc:
        raise ApiError(404 if "no user" in str(exc) else 400, str(exc)) from None
    log.info("console user deleted", extra={"by": user(request)["name"], "user": name})
    return json_response({"ok": True})


@requires("installer")
async def list_tokens(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return json_response({"tokens": await console.store.call(console.accounts.tokens)})


@requires("installer")
async def add_token(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    data = await read_json(request)
    try:
        tok = await console.store.call(console.accounts.add_token, field(data, "name", max_len=64),
                                       field(data, "role", required=False, default="manager", max_len=20),
                                       user(request)["name"])
    except AuthError as exc:
        raise ApiError(400, str(exc)) from None
    log.info("API token created", extra={"by": user(request)["name"], "token": tok["name"], "role": tok["role"]})
    return json_response(tok, status=201)


@requires("installer")
async def revoke_token(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    try:
        await console.store.call(console.accounts.revoke_token, request.match_info["id"])
    except AuthError as exc:
        raise ApiError(404, str(exc)) from None
    return json_response({"ok": True})


def routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/me", me)
    r.add_post("/api/me/password", change_password)
    r.add_get("/api/setup/status", setup_status)
    r.add_post("/api/setup", setup)
    r.add_get("/api/users", list_users)
    r.add_post("/api/users", add_user)
    r.add_delete("/api/users/{name}", delete_user)
    r.add_get("/api/tokens", list_tokens)
    r.add_post("/api/tokens", add_token)
    r.add_delete("/api/tokens/{id}", revoke_token)
