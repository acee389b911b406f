"""Command authorisation (HMAC signature), reload_config through the gateway's service, and the replies for
missing services; every reply validates against the schemas."""
from __future__ import annotations

import hashlib
import hmac
import json

from cloud_bridge.validate import validator
from tests.helpers.bridge_harness import Runtime, make_config, start_county, stop_county, wait_until

GW = "gw-test-1"
KEY = "s3cret-command-key"


def _signed(county, name: str, body: dict) -> tuple[bytes, list]:
    payload = json.dumps(body).encode()
    topic = f"{county.gw[GW].base}/cmd/{name}"
    sig = hmac.new(KEY.encode(), topic.encode() + b"\n" + payload, hashlib.sha256).hexdigest()
    return payload, [("signature", sig)]


async def test_signed_commands_reload_config_and_missing_services(mosquitto, tmp_path):
    county, ctask = await start_county(mosquitto.url, tmp_path / "county.db")
    rt = await Runtime(make_config(tmp_path / "gw", mosquitto.url, uplink={"command_key": {"value": KEY}})).start()
    reloads = []

    async def reload_config():
        reloads.append(1)
        return {"config_hash": "abc", "changed": ["cameras"]}

    try:
        await wait_until(lambda: rt.uplink.connected, 10, "connect")
        rt.emit(1)
        await wait_until(lambda: county.report()["unique"] == 1, 10, "first event")
        replies = []
        r = await county.command(GW, "ping", {})
        replies.append(r)
        assert r["error"]["code"] == "unauthorised"  # no signature
        payload, user = _signed(county, "ping", {"args": {}})
        r = await county.command(GW, "ping", payload=payload, user=[("signature", "00" * 32)])
        replies.append(r)
        assert r["error"]["code"] == "unauthorised"  # wrong signature
        r = await county.command(GW, "ping", payload=payload, user=user)
        replies.append(r)
        assert r["ok"] and r["result"] == {"pong": True}

        payload, user = _signed(county, "reload_config", {"args": {}})
        r = await county.command(GW, "reload_config", payload=payload, user=user)
        replies.append(r)
        assert r["error"]["code"] == "not_supported"
        rt.ctx.services["reload_config"] = reload_config
        r = await county.command(GW, "reload_config", payload=payload, user=user)
        replies.append(r)
        assert r["ok"] and r["result"]["changed"] == ["cameras"] and reloads == [1]

        payload, user = _signed(county, "snapshot", {"args": {"camera": "cam-1"}})
        r = await county.command(GW, "snapshot", payload=payload, user=user)
        replies.append(r)
        assert r["error"]["code"] == "no_cameras"
        for r in replies:
            assert validator("reply.json").is_valid(r), r
        assert rt.uplink.commands.rejected["unauthorised"] == 2
        assert rt.supervisor.health()["uplink"]["restarts"] == 0
    finally:
        await rt.stop()
        rep = county.report()
        await stop_county(county, ctask)
    assert rep["schema_errors"] == 0, rep["schema_error_samples"]
