"""Small parts of the console on their own: password hashing, login throttle, Prometheus exposition."""
from __future__ import annotations

import re

from edge.clock import FakeClock
from edge.runtime.component import Component
from edge.web.auth import hash_password, verify_password
from edge.web.metrics import RateSampler, render
from edge.web.throttle import LoginThrottle
from test_web_harness import start_harness


def test_scrypt_hashes_are_salted_and_verify():
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", a) and verify_password("correct horse battery", b)
    assert not verify_password("correct horse batterY", a)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "md5$1$2$3$4$5")


async def test_throttle_per_key_window():
    clock = FakeClock()
    t = LoginThrottle(clock, max_failures=3, window_s=60)
    for _ in range(3):
        assert t.retry_after("ip:1", "user:a") == 0
        t.failed("ip:1", "user:a")
    assert 55 <= t.retry_after("ip:1", "user:x") <= 60  # the address is locked for every name
    assert 55 <= t.retry_after("ip:2", "user:a") <= 60  # and the name from every address
    assert t.retry_after("ip:2", "user:b") == 0
    await clock.advance(30)
    assert 25 <= t.retry_after("ip:1") <= 30
    await clock.advance(31)
    assert t.retry_after("ip:1", "user:a") == 0
    t.failed("ip:3")
    t.succeeded("ip:3")
    assert t.retry_after("ip:3") == 0


class FakeCamera(Component):
    """A component reporting health in the shapes the camera and serial drivers use."""

    name = "camera-cam-1"

    async def run(self, ctx):
        await ctx.clock.sleep(3600)

    def health(self):
        return {"camera_state": "online", "fps_in": 12.5, "fps_out": 4.9, "last_detect_ms": 31.2, "detect_fps": 5,
                "sensors": {"bin-a": {"crc_error": 3, "noise_bytes": 17, "polls": 100}},
                "url": "rtsp://x", "weird": float("nan")}


async def test_metrics_map_known_health_keys_and_group_families(tmp_path, monkeypatch):
    h = await start_harness(tmp_path, monkeypatch)
    try:
        h.ctx.supervisor.add(FakeCamera())
        sampler = RateSampler()
        sampler.sample(0.0, {"bin.level": 10})
        sampler.sample(10.0, {"bin.level": 60, "door.forced": 1})
        assert sampler.rates() == {"bin.level": 5.0, "door.forced": 0.1}
        text = render(h.ctx, {"outbox_depth": 7}, sampler.rates())
    finally:
        await h.stop()
    assert 'edge_camera_fps{component="camera-cam-1",key="fps_in"} 12.5' in text
    assert 'edge_camera_fps{component="camera-cam-1",key="fps_out"} 4.9' in text
    assert 'edge_detector_ms{component="camera-cam-1",key="last_detect_ms"} 31.2' in text
    assert 'edge_serial_errors_total{component="camera-cam-1",item="sensors.bin-a",key="crc_error"} 3' in text
    assert 'edge_serial_errors_total{component="camera-cam-1",item="sensors.bin-a",key="noise_bytes"} 17' in text
    assert 'edge_component_health{component="camera-cam-1",key="sensors.bin-a.polls"} 100' in text
    assert 'edge_events_per_second{kind="bin.level"} 5' in text and "edge_outbox_depth 7\n" in text
    assert "nan" not in text.lower() and "rtsp" not in text
    # one group per family, HELP and TYPE before its samples
    seen, current = [], None
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (gauge|counter)$", line)
        if m:
            assert m.group(1) not in seen, f"{m.group(1)} appears twice"
            seen.append(m.group(1))
            current = m.group(1)
        elif not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] == current, line


def test_every_text_key_used_by_the_pages_is_in_both_catalogues():
    import json
    from pathlib import Path

    import edge.web

    static = Path(edge.web.__file__).parent / "static"
    zh = json.loads((static / "i18n" / "zh.json").read_text(encoding="utf-8"))
    en = json.loads((static / "i18n" / "en.json").read_text(encoding="utf-8"))
    assert set(zh) == set(en)
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())
    used = set()
    for f in list(static.rglob("*.js")) + list(static.glob("*.html")):
        text = f.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"', text))
        used |= set(re.findall(r'i18n(?:Ph)?: "([a-z_]+\.[a-z_.]+)"', text))
        used |= set(re.findall(r'data-i18n(?:-ph)?="([a-z_]+\.[a-z_.]+)"', text))
    for py in (static.parent.glob("*.py")):
        used |= set(re.findall(r't\(lang, "([a-z_]+\.[a-z_.]+)"', py.read_text(encoding="utf-8")))
    assert len(used) > 150
    assert sorted(used - set(zh)) == []
    # prefixes built at run time: every state/kind/role/zone type the gateway knows has a text
    from edge.config.zones import ZoneConfig
    import typing
    for z in typing.get_args(ZoneConfig.model_fields["type"].annotation):
        assert f"zone.{z}" in zh
    from edge.alerts import RULES
    for kind in {r for r in RULES}:
        assert f"kind.{kind}" in zh, kind
    for s in ("raised", "updated", "acknowledged", "resolved", "cleared"):
        assert f"state.{s}" in zh and f"filter.{s}" in zh


def test_push_and_web_config_errors_are_clear(minimal_config_text):
    import pytest

    from edge.config import ConfigError, load_config_text

    bad = minimal_config_text.replace("web:\n  enabled: false\n", "") + """alerts:
  channels:
    - {id: wc, type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", secret: x}
  routes:
    - {name: r, channels: [wc, nope], quiet_hours: "25:00-07:00"}
web:
  public_url: console.local
"""
    with pytest.raises(ConfigError) as exc:
        load_config_text(bad)
    text = str(exc.value)
    assert "WeCom group robots have no signing secret" in text
    assert "'25:00-07:00' is not a span like 22:00-07:00" in text
    assert "'console.local' is not an http(s) URL" in text
