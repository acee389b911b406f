"""End to end: `edge demo` runs the whole simulated compound; every alert kind happens, the county gets every
event exactly once (de-duplicated by seq) with no open gap, nothing restarted."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_compound_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--duration", "110", "--speed", "10", "--port", "0",
                        "--json", "--drain", "60", "--workdir", str(tmp_path / "demo")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
    assert "Console:  http://127.0.0.1:" in r.stderr and "Login:    installer / " in r.stderr
    ev = s["events_by_kind"]
    for kind in ["access.granted", "access.denied", "door.forced", "door.held_open", "reader.card", "bin.level",
                 "bin.full", "bin.temperature", "fire_lane.blocked", "fire_lane.cleared", "waste.litter",
                 "waste.off_hours_drop", "camera.offline", "camera.online"]:
        assert ev.get(kind, 0) >= 1, (kind, ev)
    al = s["alerts_by_kind"]
    for kind in ["door.forced", "bin.full", "bin.temperature", "fire_lane.blocked", "waste.litter",
                 "waste.off_hours_drop", "camera.offline"]:
        assert al.get(kind, 0) >= 1, (kind, al)
    c = s["county"]
    assert s["uplink_outages"] == 1
    assert s["delivered_all"], s
    assert c["unique"] == s["last_seq"] and c["gaps_open"] == 0 and c["schema_errors"] == 0, c
    assert s["outbox_depth"] == 0
    assert s["restarts"] == {}, s["restarts"]
