"""The uplink contract: generated schemas and AsyncAPI are fresh, the docs name exactly the topics the code uses,
and every message a gateway publishes in a full scenario (every event kind, alert, status lifecycle,
telemetry, media with faces, every command incl. every kind of bad one) validates against the schemas."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from ruamel.yaml import YAML

from cloud_bridge import asyncapi, schemagen
from cloud_bridge.aio import MqttConnection, publish_properties, user_properties
from cloud_bridge.topics import CHANNELS, parse
from cloud_bridge.validate import validate_message
from edge.events import MediaRef, uuid7
from edge.events.kinds import KINDS
from edge.privacy import PrivacyError, blur_faces, find_faces
from tests.helpers.bridge_harness import Runtime, make_config, start_county, stop_county, wait_until

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "33823288584_1d21cf0a26_k.jpg"  # cyclists, faces visible
GW = "gw-test-1"


def test_schemas_and_asyncapi_are_generated_and_fresh():
    assert schemagen.stale() == [], "run: python -m cloud_bridge.schemagen"
    assert asyncapi.main(["--check"]) == 0, "run: python -m cloud_bridge.asyncapi"


def test_docs_name_exactly_the_topics_the_code_uses():
    doc = YAML(typ="safe").load((ROOT / "docs" / "asyncapi.yaml").read_text("utf-8"))
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {f"{asyncapi.BASE}/{rel}" for rel in CHANNELS.values()}
    md = (ROOT / "docs" / "mqtt.md").read_text("utf-8")
    namespace = md.split("## Namespace", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([^`]+)` \|", namespace, re.M))
    assert table == set(CHANNELS.values())


def _sample(schema: dict, defs: dict):
    """A minimal valid instance of a pydantic-generated JSON Schema (required fields only)."""
    if "$ref" in schema:
        return _sample(defs[schema["$ref"].split("/")[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _sample(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    t = schema.get("type")
    if t == "object":
        return {k: _sample(schema["properties"][k], defs) for k in schema.get("required", [])}
    return {"string": "x", "integer": max(1, schema.get("minimum", 1)), "number": float(max(1, schema.get("minimum", 1))),
            "boolean": True, "array": []}.get(t, "x")


def test_face_blurring_blurs_faces_and_refuses_broken_images():
    jpeg = PHOTO.read_bytes()
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    faces = find_faces(img)
    assert faces, "the cyclist's face must be found"
    out, n = blur_faces(jpeg)
    assert n == len(faces)
    after = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = max(faces, key=lambda f: f[2])
    before_detail = cv2.Laplacian(cv2.cvtColor(img[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    after_detail = cv2.Laplacian(cv2.cvtColor(after[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert after_detail < before_detail * 0.3  # the face is blurred
    corner = (slice(0, 60), slice(0, 60))  # far from every face: unchanged but for re-encoding
    assert np.abs(img[corner].astype(int) - after[corner].astype(int)).mean() < 6
    for bad in (b"", b"\xff\xd8\xff\xe0 not really a jpeg", jpeg[:200]):
        with pytest.raises(PrivacyError):
            blur_faces(bad)


class _Cameras:
    """The camera service interface the uplink uses (drivers/cameras provides the real one)."""

    def __init__(self, jpeg: bytes):
        self.jpeg = jpeg

    def snapshot_jpeg(self, camera_id: str) -> bytes:
        if camera_id != "cam-lane-1":
            raise KeyError(f"no camera {camera_id!r}")
        return self.jpeg


async def test_every_message_of_a_full_scenario_validates_against_the_schemas(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cloud_bridge")
    seen: list[tuple[str, bytes, dict, bool]] = []
    spy = MqttConnection(client_id="spy", host="127.0.0.1", port=mosquitto.port, keepalive=10,
                         on_message=lambda m: seen.append((m.topic, bytes(m.payload), {
                             "content_type": getattr(m.properties, "ContentType", None),
                             "user": user_properties(m.properties)}, bool(m.retain))))
    await spy.connect()
    await spy.subscribe([("cgw/#", 1)], no_local=False)
    county, ctask = await start_county(mosquitto.url, tmp_path / "county.db")
    # a stale retained command waiting for the gateway: refused when it arrives on subscribe (retain flag set)
    stale = "cgw/v1/330106/cp-test/gw-test-1/cmd/ping"
    spy.publish(stale, b'{"args": {}}', 1, True, publish_properties(content_type="application/json"))
    cfg = make_config(tmp_path / "gw", mosquitto.url, uplink={
        "commands": ["resend", "ping", "get_status", "snapshot"], "command_max_bytes": 1024,
        "media_max_bytes": 120_000})
    rt = Runtime(cfg)
    await rt.start()
    jpeg = PHOTO.read_bytes()
    rt.ctx.services["cameras"] = _Cameras(jpeg)
    try:
        up = rt.uplink
        await wait_until(lambda: up.connected, 10, "connect")
        await wait_until(lambda: up.commands.rejected["expired"] == 1, 5, "retained command refused")
        spy.publish(stale, b"", 1, True)  # clear it
        # one event of every registered kind (alert goes to .../alert)
        for kind, spec in sorted(KINDS.items()):
            schema = spec.payload_model.model_json_schema()
            rt.ctx.emit(rt.ctx.make_event(kind, "dev-1", _sample(schema, schema.get("$defs", {}))))
        # evidence: one good photo (faces), one broken file (must not be uploaded)
        good, broken = uuid7(), uuid7()
        rt.ctx.store.add_media(good, jpeg)
        rt.ctx.store.add_media(broken, b"\xff\xd8\xff\xe0 broken")
        rt.ctx.emit(rt.ctx.make_event("fire_lane.blocked", "cam-lane-1", {"zone": "lane-3", "camera": "cam-lane-1",
                                      "object": "car"}, media=[MediaRef(good, size=len(jpeg))]))
        rt.ctx.emit(rt.ctx.make_event("waste.litter", "cam-a", {"zone": "z"}, media=[MediaRef(broken)]))
        n_events = len(KINDS) + 2
        await wait_until(lambda: county.report()["unique"] == n_events, 20, "all events at the county")
        await wait_until(lambda: up.media.c["uploaded"] == 1 and up.media.c["blocked"] == 1, 60, "media handled")

        # commands: good ones and every kind of bad one; each gets a reply, none breaks the uplink
        r = await county.command(GW, "ping", {})
        assert r["ok"] and r["result"] == {"pong": True}
        r = await county.command(GW, "get_status", {})
        assert r["ok"] and r["result"]["status"]["state"] == "online"
        r = await county.command(GW, "resend", {"from_seq": 1, "to_seq": 3})
        assert r["ok"] and r["result"]["queued"] == 3
        r = await county.command(GW, "resend", {"from_seq": 5, "to_seq": 2})
        assert r["error"]["code"] == "bad_args"
        r = await county.command(GW, "resend", {"from_seq": "one"})
        assert r["error"]["code"] == "bad_args"
        r = await county.command(GW, "fly", {})
        assert r["error"]["code"] == "unknown_command"
        r = await county.command(GW, "ping", payload=b"{not json")
        assert r["error"]["code"] == "malformed"
        r = await county.command(GW, "ping", payload=b'{"args": {}, "surprise": 1}')
        assert r["error"]["code"] == "malformed"
        r = await county.command(GW, "ping", {}, expires_at="2020-01-01T00:00:00.000Z")
        assert r["error"]["code"] == "expired"
        r = await county.command(GW, "ping", payload=b'{"args": {}, "id": "' + b"x" * 2000 + b'"}')
        assert r["error"]["code"] == "too_large"
        r = await county.command(GW, "reload_config", {})
        assert r["error"]["code"] == "unauthorised"
        r = await county.command(GW, "snapshot", {"camera": "cam-nope"})
        assert r["error"]["code"] == "failed"
        r = await county.command(GW, "snapshot", {"camera": "cam-lane-1"})
        assert r["ok"] and r["result"]["faces_blurred"] >= 1 and r["result"]["bytes"] <= 120_000
        assert up.commands.rejected["expired"] == 2  # the retained one and the one past expires_at
        await asyncio.sleep(1.2)  # at least one telemetry message
        assert rt.supervisor.health()["uplink"]["restarts"] == 0
    finally:
        await rt.stop()
    await asyncio.sleep(0.5)
    await spy.close()
    rep = county.report()
    await stop_county(county, ctask)

    assert rep["schema_errors"] == 0, rep["schema_error_samples"]
    assert rep["per_gateway"][GW]["status"] == "stopped"
    gateway_msgs = [(t, p, pr, ret) for t, p, pr, ret in seen if parse(t) and parse(t)[3] != "cmd"]
    channels = {parse(t)[3] for t, *_ in gateway_msgs}
    assert channels == set(CHANNELS) - {"cmd"}, channels
    problems = [(t, validate_message(t, p, pr)) for t, p, pr, _ in gateway_msgs]
    assert [x for x in problems if x[1]] == []
    # status lifecycle: online birth then stopped, both retained
    states = [json.loads(p)["state"] for t, p, _, _ in gateway_msgs if t.endswith("/status")]
    assert states[0] == "online" and states[-1] == "stopped"
    # media: exactly the good evidence and the snapshot, both blurred; the broken file was never published
    media = [(t, p, pr) for t, p, pr, _ in gateway_msgs if "/media/" in t]
    assert sorted(pr["user"]["role"] for _, _, pr in media) == ["evidence", "snapshot"]
    assert all(int(pr["user"]["faces_blurred"]) >= 1 for _, _, pr in media)
    assert not any(broken in t for t, _, _ in media)
    ev = next(p for t, p, pr in media if pr["user"]["role"] == "evidence")
    assert ev != jpeg  # re-encoded with the faces blurred
    # every rejection was logged
    for code in ("bad_args", "unknown_command", "malformed", "expired", "too_large", "unauthorised", "failed"):
        assert f"code={code}" in caplog.text or code in str([r.__dict__.get("code") for r in caplog.records])
    assert "media not uploaded: face blurring failed" in caplog.text
