"""Push channels against local HTTP servers that imitate each platform's robot API and check the exact
request, signature included (signatures re-computed here from each platform's documented formula)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from edge.clock import FakeClock
from test_web_harness import free_port, start_harness, step, wait_for

DING_SECRET = "SEC0123456789abcdef-ding"
FEISHU_SECRET = "feishu-signing-secret"
HOOK_SECRET = "webhook-hmac-key"


class FakeChannels:
    """One aiohttp server with the four API shapes. `answers[name]` is a list of (status, json) consumed in
    order (then success); every request is recorded with what the check found."""

    def __init__(self, clock, port: int | None = None):
        self.clock = clock
        self.port = port or free_port()
        self.requests: dict[str, list[dict]] = {"wecom": [], "dingtalk": [], "feishu": [], "webhook": []}
        self.answers: dict[str, list[tuple[int, dict | None]]] = {k: [] for k in self.requests}
        self.problems: list[str] = []
        self.runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        return {"wecom": f"{base}/cgi-bin/webhook/send?key=WKEY-1", "dingtalk": f"{base}/robot/send?access_token=DTOKEN",
                "feishu": f"{base}/open-apis/bot/v2/hook/fid-42", "webhook": f"{base}/hook"}[name]

    def yaml(self, routes: str | None = None) -> str:
        return f"""  channels:
    - {{id: wecom, type: wecom, url: "{self.url('wecom')}", min_interval_s: 0}}
    - {{id: ding, type: dingtalk, url: "{self.url('dingtalk')}", secret: {DING_SECRET}, min_interval_s: 0}}
    - {{id: feishu, type: feishu, url: "{self.url('feishu')}", secret: {FEISHU_SECRET}, min_interval_s: 0}}
    - {{id: hook, type: webhook, url: "{self.url('webhook')}", secret: {HOOK_SECRET}, min_interval_s: 0}}
  routes:
{routes or '''    - name: everything
      channels: [wecom, ding, feishu, hook]'''}
"""

    def _answer(self, name: str, ok: dict | None, ok_status: int = 200) -> web.Response:
        if self.answers[name]:
            status, body = self.answers[name].pop(0)
        else:
            status, body = ok_status, ok
        return web.json_response(body, status=status) if body is not None else web.Response(status=status)

    def _record(self, name: str, request: web.Request, raw: bytes, **extra) -> dict:
        rec = {"path": request.path, "query": dict(request.query), "headers": dict(request.headers),
               "raw": raw, "json": json.loads(raw), **extra}
        self.requests[name].append(rec)
        return rec

    def _check(self, cond: bool, what: str) -> None:
        if not cond:
            self.problems.append(what)

    async def wecom(self, request: web.Request) -> web.Response:
        raw = await request.read()
        rec = self._record("wecom", request, raw)
        self._check(request.query.get("key") == "WKEY-1", "wecom: key")
        self._check(request.content_type == "application/json", "wecom: content type")
        self._check(set(rec["json"]) == {"msgtype", "markdown"} and rec["json"]["msgtype"] == "markdown"
                    and set(rec["json"]["markdown"]) == {"content"}, "wecom: body shape")
        self._check(len(rec["json"]["markdown"]["content"].encode()) <= 4096, "wecom: content > 4096 bytes")
        return self._answer("wecom", {"errcode": 0, "errmsg": "ok"})

    async def dingtalk(self, request: web.Request) -> web.Response:
        raw = await request.read()
        q = request.query
        ts = q.get("timestamp", "")
        want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
        rec = self._record("dingtalk", request, raw, sign_ok=q.get("sign") == want)
        self._check(q.get("access_token") == "DTOKEN", "dingtalk: token")
        self._check(rec["sign_ok"], "dingtalk: signature")
        self._check(ts.isdigit() and abs(int(ts) - self.clock.time_ms()) < 3600_000, "dingtalk: timestamp (ms)")
        body = rec["json"]
        self._check(body.get("msgtype") == "markdown" and set(body.get("markdown", {})) == {"title", "text"},
                    "dingtalk: body shape")
        if not rec["sign_ok"]:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        return self._answer("dingtalk", {"errcode": 0, "errmsg": "ok"})

    async def feishu(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        ts = body.get("timestamp", "")
        want = base64.b64encode(hmac.new(f"{ts}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
        rec = self._record("feishu", request, raw, sign_ok=body.get("sign") == want)
        self._check(isinstance(ts, str) and ts.isdigit() and abs(int(ts) - self.clock.time()) < 3600,
                    "feishu: timestamp (s, string)")
        self._check(rec["sign_ok"], "feishu: signature")
        self._check(body.get("msg_type") == "post" and "zh_cn" in body.get("content", {}).get("post", {}),
                    "feishu: body shape")
        if not rec["sign_ok"]:
            return web.json_response({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        return self._answer("feishu", {"code": 0, "msg": "success", "data": {}})

    async def webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        want = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        rec = self._record("webhook", request, raw, sign_ok=request.headers.get("X-Edge-Signature") == want)
        self._check(rec["sign_ok"], "webhook: signature")
        self._check(bool(request.headers.get("X-Edge-Delivery")), "webhook: delivery id")
        if not rec["sign_ok"]:
            return web.json_response({"error": "bad signature"}, status=401)
        return self._answer("webhook", None, 204)

    async def start(self) -> "FakeChannels":
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self.wecom)
        app.router.add_post("/robot/send", self.dingtalk)
        app.router.add_post("/open-apis/bot/v2/hook/fid-42", self.feishu)
        app.router.add_post("/hook", self.webhook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None

    def count(self) -> int:
        return sum(len(v) for v in self.requests.values())


async def outbox_rows(h) -> list[dict]:
    def q():
        with h.ctx.store.transaction() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM notify_outbox ORDER BY id")]
    return await h.ctx.store.call(q)


@pytest.fixture
async def env(tmp_path, monkeypatch):
    clock = FakeClock()
    fake = await FakeChannels(clock).start()
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(), clock=clock)
    yield h, fake, clock
    await h.stop()
    await fake.stop()


async def test_each_channel_gets_the_exact_request_with_a_valid_signature(env):
    h, fake, clock = env
    alert = await h.raise_fire_lane(evidence=False)
    await wait_for(lambda: fake.count() == 4, what="four pushes")
    assert fake.problems == []
    when = dt.datetime.fromtimestamp(alert["raised_ms"] / 1000, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    link = f"http://console.example/#/alerts/{alert['id']}"

    wecom = fake.requests["wecom"][0]["json"]["markdown"]["content"]
    assert wecom == "\n".join([
        '### <font color="warning">【严重】消防通道堵塞</font>',
        "> 告警：Fire lane lane-3 blocked by bicycle (2.2 min)",
        "> 地点：3号楼消防通道",
        f"> 时间：{when}",
        "> 小区：绿园小区",
        f"[在控制台查看]({link})"])

    ding = fake.requests["dingtalk"][0]
    assert ding["sign_ok"] and ding["query"]["timestamp"] == str(clock.time_ms())
    assert ding["json"]["markdown"]["title"] == "【严重】消防通道堵塞"
    assert ding["json"]["markdown"]["text"] == "\n\n".join([
        "### 【严重】消防通道堵塞", "- 告警：Fire lane lane-3 blocked by bicycle (2.2 min)", "- 地点：3号楼消防通道",
        f"- 时间：{when}", "- 小区：绿园小区", f"[在控制台查看]({link})"])

    fs = fake.requests["feishu"][0]["json"]
    assert fs["sign"] and fs["timestamp"] == str(int(clock.time()))
    post = fs["content"]["post"]["zh_cn"]
    assert post["title"] == "【严重】消防通道堵塞"
    assert post["content"][-1] == [{"tag": "a", "text": "在控制台查看", "href": link}]
    assert [{"tag": "text", "text": "地点：3号楼消防通道"}] in post["content"]

    hook = fake.requests["webhook"][0]
    body = hook["json"]
    assert hook["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert body["alert"]["alert_id"] == alert["id"] and body["alert"]["severity"] == "critical"
    assert body["alert"]["place"] == "3号楼消防通道" and body["link"] == link
    assert body["gateway_id"] == "gw-web-1" and body["purpose"] == "push" and body["sent_ms"] == clock.time_ms()
    assert hook["headers"]["X-Edge-Delivery"] == f"gw-web-1:{body['delivery'].split(':')[1]}"
    assert body["text"].startswith("【严重】消防通道堵塞\n告警：")

    rows = await outbox_rows(h)
    assert sorted(r["channel"] for r in rows) == ["ding", "feishu", "hook", "wecom"]
    assert {r["state"] for r in rows} == {"sent"} and {r["attempts"] for r in rows} == {1}
    assert h.ctx.services["notify"].health()["sent"] == 4


async def test_platform_errors_are_retried_and_client_errors_are_not(env):
    h, fake, clock = env
    fake.answers["wecom"] = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    fake.answers["feishu"] = [(200, {"code": 9499, "msg": "Bad Request"}), (502, {"msg": "gateway"})]
    fake.answers["webhook"] = [(400, {"error": "unknown compound"})]
    fake.answers["dingtalk"] = [(429, {"errmsg": "slow down"})]
    alert = await h.raise_door_forced()
    await wait_for(lambda: fake.count() == 4, what="first attempts")
    rows = {r["channel"]: r for r in await wait_for(
        lambda: _all_attempted(h), what="attempts recorded")}
    assert rows["hook"]["state"] == "failed" and rows["hook"]["last_error"].startswith("HTTP 400")
    assert rows["wecom"]["state"] == "pending" and "errcode 45009: api freq out of limit" in rows["wecom"]["last_error"]
    assert rows["ding"]["state"] == "pending" and rows["ding"]["last_error"].startswith("HTTP 429")
    await step(h, clock, 15)
    await wait_for(lambda: _states(h, {"wecom": "sent", "ding": "sent", "feishu": "sent", "hook": "failed"}),
                   what="retries delivered")
    assert len(fake.requests["webhook"]) == 1  # a 400 is not retried
    assert len(fake.requests["feishu"]) == 3 and len(fake.requests["wecom"]) == 2
    assert all(r["json"]["markdown"]["content"].count(alert["id"]) == 1 for r in fake.requests["wecom"])
    assert fake.problems == []
    health = h.ctx.services["notify"].health()
    assert health["failed"] == 1 and health["sent"] == 3 and health["retries"] == 4


async def _all_attempted(h):
    rows = await outbox_rows(h)
    return rows if len(rows) == 4 and all(r["attempts"] >= 1 for r in rows) else None


async def _states(h, want):
    rows = await outbox_rows(h)
    return {r["channel"]: r["state"] for r in rows} == want


async def test_test_message_from_the_console(env):
    h, fake, clock = env
    inst = await h.client("installer", "inst")
    status, r = await inst.post("/api/notify/feishu/test", {})
    assert status == 200 and r == {"ok": True}
    assert "【测试】" in fake.requests["feishu"][0]["json"]["content"]["post"]["zh_cn"]["title"]
    fake.answers["wecom"] = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    status, r = await inst.post("/api/notify/wecom/test", {})
    assert status == 502 and r == {"ok": False, "error": "errcode 93000: invalid webhook url"}
    status, r = await inst.post("/api/notify/nope/test", {})
    assert status == 404
    status, st = await inst.get("/api/notify")
    assert [c["id"] for c in st["channels"]] == ["wecom", "ding", "feishu", "hook"] and st["counts"]["pending"] == 0
    assert "WKEY-1" not in json.dumps(st)
