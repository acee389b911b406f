"""Store insert rate: events/s with group commit (batched) and one transaction per event (single).

Usage: python bench/store.py [--json] [--seconds S]
Both modes use synchronous=FULL + WAL, i.e. every commit is an fsync: the honest, power-loss-safe number.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.events import Event, uuid7  # noqa: E402
from edge.store import Store  # noqa: E402


def make(i: int) -> Event:
    return Event(id=uuid7(), ts_ms=int(time.time() * 1000), kind="access.granted", gateway_id="gw-bench",
                 compound_id="cp", source=f"ctl-{i % 4}",
                 payload={"controller": "405419896", "door": 1 + i % 4, "direction": "in", "credential": str(i)})


def run(seconds: float, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        s = Store(Path(d) / "bench.db")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            s.insert_events([make(n + i) for i in range(batch)])
            n += batch
        dt = time.perf_counter() - t0
        s.close()
    return {"batch": batch, "events": n, "seconds": round(dt, 2), "events_per_s": round(n / dt)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    out = {"single": run(a.seconds, 1), "batched_100": run(a.seconds, 100), "batched_1000": run(a.seconds, 1000)}
    print(json.dumps(out, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
