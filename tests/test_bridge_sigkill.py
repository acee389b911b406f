"""Fault test 2: the gateway process is SIGKILLed 10 times while publishing; nothing it committed is lost.

The child (this file run as a script) produces events in small batches, waits until each batch is durable
(bus.emit_durable) and only then prints the ids: those are the events the gateway promised to deliver.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GW = "gw-kill-1"


async def _child(cfg_json: str, mode: str) -> None:
    sys.path.insert(0, str(ROOT))
    from edge.config import Config
    from tests.helpers.bridge_harness import Runtime

    rt = await Runtime(Config.model_validate(json.loads(cfg_json))).start()
    print("ready", flush=True)
    if mode == "produce":
        n = 0
        while True:
            batch = [rt.ctx.make_event("access.granted", f"door-{(n + i) % 4}", {"controller": "c1", "door": 1})
                     for i in range(20)]
            for e in batch[:-1]:
                rt.ctx.emit(e)
            await rt.ctx.bus.emit_durable(batch[-1])  # committed in order: the whole batch is on disk now
            print(" ".join(e.id for e in batch), flush=True)
            n += 20
            await asyncio.sleep(0.01)
    else:  # drain: run until everything is out, then stop cleanly
        while rt.ctx.store.outbox_depth() > 0 or not rt.uplink.connected:
            await asyncio.sleep(0.05)
        await rt.stop()
        print("drained", flush=True)


def _spawn(cfg: dict, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", json.dumps(cfg), mode], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_gateway_sigkilled_10_times_while_publishing_loses_nothing(mosquitto, tmp_path):
    from tests.helpers.bridge_harness import make_config, start_county, stop_county, wait_until

    county, ctask = await start_county(mosquitto.url, tmp_path / "county.db")
    cfg = make_config(tmp_path / "gw", mosquitto.url, gateway_id=GW,
                      uplink={"reconnect_min_s": 0.05, "reconnect_max_s": 0.2}).model_dump(mode="json")
    promised: list[str] = []
    rng = random.Random(7)
    try:
        for i in range(10):
            p = _spawn(cfg, "produce")
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            os.kill(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=10)
            lines = [ln for ln in out.splitlines() if ln and ln != "ready"]
            promised += [i for ln in lines for i in ln.split()]
        assert len(promised) > 500
        p = _spawn(cfg, "drain")
        out, err = p.communicate(timeout=60)
        assert "drained" in out, err[-3000:]

        db = sqlite3.connect(Path(cfg["storage"]["path"]) / "edge.db")
        last_seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()[0]
        pending = db.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()[0]
        db.close()
        assert pending == 0
        await wait_until(lambda: county.report()["per_gateway"].get(GW, {}).get("unique", 0) >= last_seq, 20,
                         "county has every seq")
        rep = county.report()
        g = rep["per_gateway"][GW]
        have = {e for _, e in county.ordered(GW)}
        missing = [e for e in promised if e not in have]
        assert not missing, f"{len(missing)} committed events never reached the county"
        assert [s for s, _ in county.ordered(GW)] == list(range(1, last_seq + 1))  # no seq gap, none reused
        assert g["gaps_open"] == 0
        assert rep["schema_errors"] == 0, rep["schema_error_samples"]
    finally:
        await stop_county(county, ctask)


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "--child":
    asyncio.run(_child(sys.argv[2], sys.argv[3]))
