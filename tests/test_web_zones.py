"""Zone editor API: validated, written to edge.yaml with comments kept and a backup, applied without restart."""
from __future__ import annotations

import pytest

from edge.config import load_config
from test_web_harness import start_harness, wait_for

NEW_ZONE = {"id": "lane-5", "camera": "cam-lane-1", "type": "fire_lane", "name": "5号楼通道",
            "polygon": [[0.2, 0.5], [0.7, 0.5], [0.75, 0.95], [0.15, 0.95]]}


@pytest.fixture
async def h(tmp_path, monkeypatch):
    harness = await start_harness(tmp_path, monkeypatch)
    calls = []
    harness.ctx.services["zones_changed"] = lambda cfg: calls.append(cfg)
    harness.hook_calls = calls
    yield harness
    await harness.stop()


def backups(h):
    return sorted(h.config_path.parent.glob("edge.yaml.bak-*"))


async def test_create_zone_keeps_comments_makes_a_backup_and_applies(h):
    inst = await h.client("installer", "inst")
    before = h.config_path.read_text(encoding="utf-8")
    status, r = await inst.post("/api/zones", NEW_ZONE)
    assert status == 201, r
    assert r["applied"] is True and r["apply_error"] is None
    assert r["zone"]["id"] == "lane-5" and r["zone"]["dwell_s"] == 120  # defaults filled by validation
    text = h.config_path.read_text(encoding="utf-8")
    for kept in ["# edge.yaml for the console tests. This comment must survive zone edits.",
                 "  # the lane in front of building 3\n",
                 "    polygon: [[0.10, 0.55], [0.90, 0.55], [0.98, 0.98], [0.02, 0.98]]\n",
                 "    dwell_s: 120   # two minutes\n",
                 "      - {unit: 1, bin: a-kitchen, station: station-a, empty_mm: 1200, full_mm: 250}\n",
                 '  county_code: "330106"\n']:
        assert kept in text, kept
    assert "    polygon: [[0.2, 0.5], [0.7, 0.5], [0.75, 0.95], [0.15, 0.95]]\n" in text
    assert [b.read_text(encoding="utf-8") for b in backups(h)] == [before]
    assert r["backup"] == backups(h)[0].name
    on_disk = load_config(h.config_path)  # the file is valid on its own
    assert [z.id for z in on_disk.zones] == ["lane-3", "lane-5"]
    assert [z.id for z in h.ctx.config.zones] == ["lane-3", "lane-5"]  # applied without restart
    assert h.gw.config is h.ctx.config
    assert len(h.hook_calls) == 1 and [z.id for z in h.hook_calls[0].zones] == ["lane-3", "lane-5"]
    ev = await wait_for(lambda: h.ctx.store.call(h.ctx.store.query_events, kind="config.changed"),
                        what="config.changed event")
    assert ev[0].payload["by"] == "inst" and ev[0].payload["zone"] == "lane-5"
    status, listed = await inst.get("/api/zones")
    assert [z["id"] for z in listed["zones"]] == ["lane-3", "lane-5"] and "fire_lane" in listed["types"]


async def test_update_and_delete_zone(h):
    inst = await h.client("installer")
    poly = [[0.05, 0.6], [0.95, 0.6], [0.95, 0.99], [0.05, 0.99]]
    status, r = await inst.request("PUT", "/api/zones/lane-3", json={"polygon": poly, "name": "消防通道 A"})
    assert status == 200, r
    text = h.config_path.read_text(encoding="utf-8")
    assert "    polygon: [[0.05, 0.6], [0.95, 0.6], [0.95, 0.99], [0.05, 0.99]]\n" in text
    assert "    dwell_s: 120   # two minutes\n" in text and "  # the lane in front of building 3\n" in text
    assert h.ctx.config.zones[0].name == "消防通道 A"
    assert h.ctx.config.zones[0].polygon == [tuple(p) for p in poly]
    status, r = await inst.request("DELETE", "/api/zones/lane-3")
    assert status == 200 and h.ctx.config.zones == [], r
    text = h.config_path.read_text(encoding="utf-8")
    assert "lane-3" not in text and "zones: []\n" in text and "# the lane in front" not in text
    assert "# edge.yaml for the console tests." in text and "dwell" not in text
    assert len(backups(h)) == 2
    status, err = await inst.request("DELETE", "/api/zones/lane-3")
    assert status == 404 and err["error"] == "no zone 'lane-3'"
    status, err = await inst.request("PUT", "/api/zones/nope", json={"name": "x"})
    assert status == 404


@pytest.mark.parametrize("polygon,message", [
    ([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]], "self-intersecting"),
    ([[0.1, 0.1], [1.4, 0.1], [0.5, 0.8]], "outside 0..1"),
    ([[0.1, 0.1], [0.9, 0.1]], "at least 3 points"),
    ([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "no area"),
    ([[0.1, "a"], [0.2, 0.2], [0.3, 0.1]], "[x, y] number pairs"),
    ("square", "[x, y] number pairs"),
])
async def test_invalid_polygon_is_refused_and_the_file_is_untouched(h, polygon, message):
    inst = await h.client("installer")
    before = h.config_path.read_bytes()
    status, err = await inst.post("/api/zones", NEW_ZONE | {"polygon": polygon})
    assert status == 400 and err["error"].startswith("invalid polygon") and message in err["error"], err
    status, err = await inst.request("PUT", "/api/zones/lane-3", json={"polygon": polygon})
    assert status == 400 and message in err["error"]
    assert h.config_path.read_bytes() == before and backups(h) == [] and h.hook_calls == []


async def test_references_are_validated_with_the_whole_config(h):
    inst = await h.client("installer")
    before = h.config_path.read_bytes()
    status, err = await inst.post("/api/zones", NEW_ZONE | {"station": "station-zz"})
    assert status == 400 and "unknown station 'station-zz'" in err["error"] and "station-a" in err["error"]
    assert any("zones[1].station" in p for p in err["problems"])
    status, err = await inst.post("/api/zones", NEW_ZONE | {"camera": "cam-9"})
    assert status == 400 and "unknown camera 'cam-9'" in err["error"]
    status, err = await inst.post("/api/zones", NEW_ZONE | {"type": "parking"})
    assert status == 400 and "'parking' is not allowed" in err["error"]
    status, err = await inst.post("/api/zones", NEW_ZONE | {"id": "lane-3"})
    assert status == 409 and "exists already" in err["error"]
    status, err = await inst.post("/api/zones", NEW_ZONE | {"dwell_s": -5})
    assert status == 400 and "out of range" in err["error"]
    status, err = await inst.post("/api/zones", NEW_ZONE | {"classes": ["car"]})
    assert status == 400 and "unknown zone field(s): classes" in err["error"]
    status, err = await inst.post("/api/zones", {"id": "x"})
    assert status == 400 and "missing field 'camera'" in err["error"]
    assert h.config_path.read_bytes() == before


async def test_manager_cannot_edit_zones(h):
    mgr = await h.client("manager")
    before = h.config_path.read_bytes()
    assert (await mgr.get("/api/zones"))[0] == 200
    for method, path in [("POST", "/api/zones"), ("PUT", "/api/zones/lane-3"), ("DELETE", "/api/zones/lane-3")]:
        status, err = await mgr.request(method, path, json=NEW_ZONE)
        assert status == 403 and "installer" in err["error"]
    assert h.config_path.read_bytes() == before


async def test_saved_but_not_applied_when_the_hook_fails_or_is_missing(h):
    inst = await h.client("installer")

    def broken(cfg):
        raise RuntimeError("analytics busy")
    h.ctx.services["zones_changed"] = broken
    status, r = await inst.post("/api/zones", NEW_ZONE)
    assert status == 201 and r["applied"] is False and "RuntimeError: analytics busy" in r["apply_error"]
    assert "lane-5" in h.config_path.read_text(encoding="utf-8")
    del h.ctx.services["zones_changed"]
    status, r = await inst.request("DELETE", "/api/zones/lane-5")
    assert status == 200 and r["applied"] is False and "restart" in r["apply_error"]


async def test_no_config_file_means_no_zone_editing(h):
    inst = await h.client("installer")
    h.ctx.config_path = None
    status, err = await inst.post("/api/zones", NEW_ZONE)
    assert status == 409 and "without a config file" in err["error"]
    assert (await inst.get("/api/zones"))[1]["editable"] is False
