import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.clock import FakeClock
from edge.config import load_config_text
from edge.runtime import Component, Gateway

ROOT = Path(__file__).resolve().parents[1]


def cfg(tmp_path, extra=""):
    return load_config_text(f"""gateway: {{id: gw-t, compound_id: cp-t, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}, commit_interval_ms: 20}}
web: {{enabled: false}}
""" + extra)


class Flaky(Component):
    name = "flaky"

    def __init__(self, fail_times=2):
        self.fail_times = fail_times
        self.runs = 0

    async def run(self, ctx):
        self.runs += 1
        if self.runs <= self.fail_times:
            raise RuntimeError(f"boom {self.runs}")
        ctx.emit_new("gateway.test", self.name, {"runs": self.runs})
        await asyncio.Event().wait()

    def health(self):
        return {"runs": self.runs}


async def test_supervisor_restarts_with_backoff_and_records_why(tmp_path):
    flaky = Flaky()
    gw = Gateway(cfg(tmp_path), components=[flaky])
    ctx = await gw.start()
    gw.supervisor.backoff_min = 0.05
    for _ in range(200):
        if flaky.runs >= 3:
            break
        await asyncio.sleep(0.05)
    h = gw.supervisor.health()["flaky"]
    assert h["restarts"] == 2 and h["last_error"] == "RuntimeError: boom 2" and h["state"] == "running"
    assert h["runs"] == 3
    await asyncio.sleep(0.1)
    assert ctx.store.count_events("gateway.test") == 1
    await gw.stop()


async def test_events_are_durable_before_subscribers_see_them(tmp_path):
    gw = Gateway(cfg(tmp_path))
    ctx = await gw.start()
    seen = []

    def on_event(e):
        # at delivery time the event must already be in SQLite (read through a separate connection)
        import sqlite3
        con = sqlite3.connect(ctx.store.path)
        seen.append(con.execute("SELECT count(*) FROM events WHERE id = ?", (e.id,)).fetchone()[0])
        con.close()

    ctx.subscribe("t", on_event, kinds=["bin.*"])
    for i in range(20):
        ctx.emit_new("bin.level", "bus-a", {"bin": "b1", "fill_pct": i})
    ctx.emit_new("gateway.test", "x", {})  # filtered out
    for _ in range(100):
        if len(seen) == 20:
            break
        await asyncio.sleep(0.02)
    assert seen == [1] * 20
    await gw.stop()


async def test_fake_clock_drives_sleepers():
    clock = FakeClock(1000.0)
    woke = []

    async def sleeper(d):
        await clock.sleep(d)
        woke.append((d, clock.time()))

    tasks = [asyncio.create_task(sleeper(d)) for d in (120, 30, 600)]
    await asyncio.sleep(0)
    await clock.advance(200)
    assert woke == [(30, 1030.0), (120, 1120.0)]
    await clock.advance(400)
    assert woke[-1] == (600, 1600.0)
    await asyncio.gather(*tasks)


def test_edge_run_logs_health_and_stops_cleanly_on_sigterm(tmp_path):
    conf = tmp_path / "edge.yaml"
    conf.write_text(f"""gateway: {{id: gw-run, compound_id: cp-t, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}}}
web: {{enabled: false}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "-c", str(conf)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(json.loads(line))
        if lines[-1]["msg"] == "component health":
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    lines += [json.loads(x) for x in rest.splitlines() if x.strip()]
    assert proc.returncode == 0
    msgs = [x["msg"] for x in lines]
    assert msgs[0] == "gateway started"
    health = next(x for x in lines if x["msg"] == "component health")
    assert health["health"]["retention"] == "running"
    assert msgs[-1] == "gateway stopped cleanly"
    from edge.store import Store
    s = Store(tmp_path / "data" / "edge.db")
    kinds = s.events_by_kind()
    assert kinds.get("gateway.started") == 1 and kinds.get("gateway.stopped") == 1
    s.close()


async def test_reload_config_applies_live_sections_and_rejects_invalid(tmp_path):
    conf = tmp_path / "edge.yaml"
    base = f"""gateway: {{id: gw-t, compound_id: cp-t, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}}}
web: {{enabled: false}}
"""
    conf.write_text(base)
    from edge.config import load_config
    gw = Gateway(load_config(conf), conf)
    ctx = await gw.start()
    calls = []
    ctx.services["zones_changed"] = lambda c: calls.append(len(c.schedules))
    conf.write_text(base + "schedules:\n  - {id: s1, windows: ['07:00-09:00']}\nlogging: {level: DEBUG}\n")
    r = ctx.services["reload_config"]()
    assert r["ok"] and r["applied_live"] == ["schedules"] and r["restart_required"] == ["logging"]
    assert calls == [1] and gw.config.schedules[0].id == "s1"
    conf.write_text(base + "schedules: [{id: s1, windows: ['09:00-07:00']}]\n")
    r = ctx.services["reload_config"]()
    assert not r["ok"] and "end must be after start" in r["problems"][0]
    assert gw.config.schedules[0].windows == ["07:00-09:00"]  # running config unchanged
    await gw.stop()
