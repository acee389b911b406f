"""`edge bench NAME [--json]`: runs the benchmark scripts in bench/ (each prints one JSON document)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _bench(args) -> int:
    script = BENCH_DIR / f"{args.name}.py"
    if not script.exists():
        names = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
        print(f"no benchmark {args.name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    extra = list(args.extra)
    if args.json and "--json" not in extra:
        extra.append("--json")
    cmd = [sys.executable, str(script)] + extra
    return subprocess.call(cmd)


def register_cli(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark from bench/ (uplink, inference, pipeline, store, soak)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed to the benchmark (e.g. --seconds 5)")
    p.set_defaults(func=_bench)
