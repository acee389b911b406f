"""The console component: an aiohttp server inside the gateway's event loop."""
from __future__ import annotations

import collections
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.runtime.component import Component

from . import api_alerts, api_auth, api_site, api_zones
from .auth import Accounts
from .http import CONSOLE, USER, auth_middleware, errors_middleware, public, security_headers
from .i18n import t
from .metrics import RateSampler
from .sse import SseHub
from .throttle import LoginThrottle
from .zones_file import ZonesFile

log = logging.getLogger("edge.web")
STATIC = Path(__file__).parent / "static"
RATE_SAMPLE_S = 5.0


def _lan_address() -> str:
    """The address other machines on the LAN reach this gateway at (for the printed setup link)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel just picks the route
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


class WebConsole(Component):
    name = "web"

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.store
        web_cfg = ctx.config.web
        self.accounts = Accounts(ctx.store, web_cfg.session_hours)
        self.throttle = LoginThrottle(ctx.clock, web_cfg.login_max_failures, web_cfg.login_window_s)
        self.hub = SseHub()
        self.zones_file = ZonesFile(ctx, web_cfg.config_backups)
        self.rates = RateSampler()
        self.responses: collections.Counter = collections.Counter()
        self.max_body = web_cfg.max_body_kb * 1024
        self.port: int | None = None
        self.url: str | None = None
        self.setup_url: str | None = None
        ctx.services["web"] = self
        # subscribed now (before the bus starts) so the live view and the rate sampler miss nothing
        ctx.subscribe("web", self.hub.on_event, maxsize=20_000)

    @property
    def config(self):
        return self.ctx.config

    @property
    def secure_cookies(self) -> bool:
        w = self.config.web
        return w.secure_cookies if w.secure_cookies is not None else bool(w.public_url and
                                                                          w.public_url.startswith("https://"))

    def count(self, status: int) -> None:
        self.responses[f"{status // 100}xx"] += 1

    def health(self) -> dict[str, Any]:
        return {"port": self.port, "sse_clients": len(self.hub.clients), "sse_sent": self.hub.sent,
                "sse_dropped": self.hub.dropped, "login_failures": self.throttle.failures,
                "login_blocked": self.throttle.blocked, "zone_saves": self.zones_file.saves,
                "zone_rejected": self.zones_file.rejected, "responses": dict(self.responses)}

    # ---- views shared by handlers --------------------------------------------------------------------------
    def place_of(self, zone: str | None) -> str | None:
        if not zone:
            return None
        cfg = self.config
        z = next((z for z in cfg.zones if z.id == zone), None)
        if z is not None:
            return z.name or z.id
        st = next((s for s in cfg.stations if s.id == zone), None)
        if st is not None:
            return st.name or st.id
        cam = cfg.camera(zone)
        if cam is not None:
            return cam.name or cam.id
        return zone

    def alert_view(self, a: dict) -> dict:
        return {k: a.get(k) for k in ("id", "kind", "zone", "source", "severity", "state", "title", "raised_ms",
                                      "updated_ms", "acked_by", "acked_ms", "resolved_ms", "note", "updates",
                                      "evidence", "detail", "dedup_key")} | {"place": self.place_of(a.get("zone"))}

    async def metric_stats(self) -> dict[str, Any]:
        store = self.store
        now = self.ctx.clock.time_ms()
        depth = await store.call(store.outbox_depth)
        oldest = await store.call(store.outbox_oldest_pending_ms)
        mgr = self.ctx.services.get("alerts")
        notify = self.ctx.services.get("notify")
        counts = (await notify.status(limit=0))["counts"] if notify else {}
        return {"outbox_depth": depth, "outbox_oldest_age_s": (now - oldest) / 1000 if oldest else 0,
                "alerts_open": (await store.call(mgr.health)).get("open") if mgr is not None else None,
                "notify_pending": counts.get("pending"), "notify_sent": counts.get("sent"),
                "notify_failed": counts.get("failed"), "sse_clients": len(self.hub.clients),
                "login_failures": self.throttle.failures, "login_blocked": self.throttle.blocked,
                "responses": dict(self.responses)}

    # ---- the app ---------------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=self.max_body)
        app[CONSOLE] = self
        app.on_response_prepare.append(security_headers)

        @public
        async def login_page(request: web.Request):
            if request[USER] is not None:
                raise web.HTTPFound("/")
            return web.FileResponse(STATIC / "login.html")

        @public
        async def setup_page(request: web.Request):
            return web.FileResponse(STATIC / "setup.html")

        async def index(request: web.Request):
            return web.FileResponse(STATIC / "index.html")

        @public
        async def favicon(request: web.Request):
            return web.FileResponse(STATIC / "icon.svg", headers={"Content-Type": "image/svg+xml"})

        app.router.add_get("/", index)
        app.router.add_get("/login", login_page)
        app.router.add_get("/setup", setup_page)
        app.router.add_get("/favicon.ico", favicon)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        api_auth.routes(app)
        api_alerts.routes(app)
        api_zones.routes(app)
        api_site.routes(app)
        return app

    async def run(self, ctx) -> None:
        cfg = ctx.config.web
        runner = web.AppRunner(self.make_app(), shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.host, cfg.port)
            await site.start()
            port = runner.addresses[0][1] if runner.addresses else cfg.port
            shown_host = cfg.host if cfg.host not in ("0.0.0.0", "::", "") else _lan_address()
            self.url = cfg.public_url or f"http://{shown_host}:{port}"
            await self._announce_setup()
            self.port = port  # set last: "port known" means the console is fully up (tests wait for it)
            log.info("console listening", extra={"url": self.url, "host": cfg.host, "port": port})
            while True:
                self.rates.sample(ctx.clock.monotonic(), getattr(ctx.bus, "by_kind", {}))
                await ctx.clock.sleep(RATE_SAMPLE_S)
        finally:
            self.hub.close_all()
            await runner.cleanup()
            self.port = None

    async def _announce_setup(self) -> None:
        """No default password: with no account yet, print a one-time link that creates the first installer."""
        if await self.store.call(self.accounts.count_users) > 0:
            return
        hours = self.config.web.setup_token_hours
        token = await self.store.call(self.accounts.new_setup_token, hours)
        self.setup_url = f"{self.url}/setup#token={token}"
        lang = self.config.web.language
        banner = "\n".join(["", "=" * 72, t(lang, "setup.banner_title"),
                            t(lang, "setup.banner_open", hours=f"{hours:g}"), f"    {self.setup_url}",
                            t(lang, "setup.banner_token", token=token),
                            t(lang, "setup.banner_cli"), "=" * 72, ""])
        print(banner, file=sys.stderr, flush=True)
        log.warning("no console account yet; open the one-time setup link to create the first installer",
                    extra={"setup_url": self.setup_url, "expires_h": hours})
