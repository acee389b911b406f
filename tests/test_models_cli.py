"""`edge detect` (run as `python -m models.cli detect`, the same register_cli the edge entry point uses)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "models.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    good = (DATA / "sam_truck.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 50])   # a JPEG header and nothing usable
    (d / "text.jpg").write_text("not an image")
    (d / "empty.png").write_bytes(b"")
    return d


def test_detect_json_mixed_good_and_broken(broken):
    r = run("detect", DATA / "darknet_dog.jpg", broken / "text.jpg", broken / "empty.png", DATA / "sam_truck.jpg",
            broken / "missing.jpg", "--json", "--threads", "2")
    assert r.returncode == 1, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [Path(x["image"]).name for x in lines] == ["darknet_dog.jpg", "text.jpg", "empty.png", "sam_truck.jpg",
                                                      "missing.jpg"]
    dog, text, empty, truck, missing = lines
    assert set(dog) >= {"image", "ms", "detections"} and dog["ms"] > 0
    assert {"bicycle", "dog"} <= {d["label"] for d in dog["detections"]}
    for d in dog["detections"]:
        assert set(d) == {"label", "score", "box"} and len(d["box"]) == 4
        assert 0 <= d["box"][0] < d["box"][2] <= 768 and 0 <= d["box"][1] < d["box"][3] <= 576
    t = [d for d in truck["detections"] if d["label"] == "truck"]
    assert t and t[0]["box"][2] > 1500                           # original 1800x1200 pixels
    assert "not a decodable image" in text["error"] and "empty" in empty["error"] and "no such file" in missing["error"]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 3 and "text.jpg: not a decodable image" in errors[0]
    assert "Traceback" not in r.stderr


def test_detect_truncated_jpeg_is_an_error_or_a_result_never_a_crash(broken):
    r = run("detect", broken / "truncated.jpg", "--json")
    assert "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert ("error" in out and r.returncode == 1) or ("detections" in out and r.returncode == 0)


def test_detect_human_output_and_unknown_model():
    r = run("detect", DATA / "jetson_motorcycles.jpg")
    assert r.returncode == 0, r.stderr
    assert "jetson_motorcycles.jpg: 500x375" in r.stdout and "motorcycle" in r.stdout
    r = run("detect", DATA / "jetson_motorcycles.jpg", "--model", "nosuch")
    assert r.returncode == 2 and "model 'nosuch' not found; available: ssd_mobilenet_v2_coco" in r.stderr
    r = run("detect", DATA / "jetson_motorcycles.jpg", "--threads", "0")
    assert r.returncode == 2 and "must be >= 1" in r.stderr


def test_register_cli_adds_detect():
    from models.cli import cmd_detect, register_cli
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["detect", "a.jpg", "b.jpg", "--model", "m", "--threads", "2", "--json"])
    assert args.func is cmd_detect and args.images == ["a.jpg", "b.jpg"] and args.threads == 2 and args.json


def test_inference_bench_function(capsys):
    from models.cli import run_inference_bench
    result = run_inference_bench(json=True, threads=(1,), frames=3)
    printed = json.loads(capsys.readouterr().out)
    assert printed == result
    r = result["threads"]["1"]
    assert result["model"] == "ssd_mobilenet_v2_coco" and r["frames"] == 3 and 0 < r["median_ms"] <= r["p90_ms"] * 1.0001
