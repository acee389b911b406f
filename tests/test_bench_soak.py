"""bench/soak.py runs end to end and prints one valid JSON document (a ~20 s smoke run; the real soak is run by hand:
`edge bench soak --json --minutes 30`). No figures are asserted: benchmarks report, tests do not time."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_soak_smoke_prints_json(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.3", "--json",
                        "--flap-every", "0", "--workdir", str(tmp_path / "soak")],
                       capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    run = [s for s in d["samples"] if s["minute"] != "after_drain"]
    assert len(run) == 3 and d["samples"][-1]["minute"] == "after_drain"
    for s in run:
        assert s["rss_mb"] > 0 and s["fds"] > 0 and s["events_committed"] > 0, s
    assert d["growth"]["fds_first"] == run[0]["fds"] and d["totals"]["soak_traffic"]["swipes"] > 0
    assert d["exactly_once"] and d["exactly_once_check"]["gateway_last_seq"] == d["county"]["unique"] > 0, d["county"]
