"""Generate the JSON Schemas of the MQTT contract into cloud_bridge/schemas/ from the pydantic models.

    python -m cloud_bridge.schemagen          # rewrite the files
    python -m cloud_bridge.schemagen --check  # exit 1 if the files are stale (the tests run this)

Event payload schemas come from the kind registry (edge/events/kinds.py), one file per kind; the envelope,
status, telemetry, command and reply schemas from cloud_bridge/models.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.events.kinds import KINDS

from . import models

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://schemas.compound-gateway.example/cgw/v1/"


def _schema(model, title: str, rel: str, by_alias: bool = True) -> dict:
    s = model.model_json_schema(by_alias=by_alias, mode="serialization")
    out = {"$schema": DRAFT, "$id": BASE_ID + rel, "title": title}
    out.update(s)
    out["title"] = title
    return out


def generate() -> dict[str, dict]:
    files: dict[str, dict] = {}
    files["envelope.json"] = _schema(models.Envelope, "Event envelope (.../event/{kind} and .../alert)",
                                     "envelope.json")
    files["status.json"] = _schema(models.Status, "Gateway status (.../status, retained)", "status.json")
    files["telemetry.json"] = _schema(models.Telemetry, "Gateway telemetry (.../telemetry)", "telemetry.json")
    files["command.json"] = _schema(models.Command, "Downlink command (.../cmd/{name})", "command.json")
    files["reply.json"] = _schema(models.Reply, "Command reply (.../reply/{name})", "reply.json")
    for name, model in models.ARGS.items():
        files[f"args/{name}.json"] = _schema(model, f"Arguments of the {name} command", f"args/{name}.json")
    files["results/resend.json"] = _schema(models.ResendResult, "Result of the resend command", "results/resend.json")
    for kind, spec in sorted(KINDS.items()):
        s = _schema(spec.payload_model, f"Payload of {kind}: {spec.description}", f"payloads/{kind}.json")
        s["x-severity"] = spec.severity.value
        s["x-priority"] = spec.priority.name.lower()
        files[f"payloads/{kind}.json"] = s
    return files


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write(root: Path = SCHEMA_DIR) -> list[str]:
    files = generate()
    for rel, schema in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render(schema), encoding="utf-8")
    known = {root / rel for rel in files}
    for p in root.rglob("*.json"):
        if p not in known:
            p.unlink()
    return sorted(files)


def stale(root: Path = SCHEMA_DIR) -> list[str]:
    files = generate()
    out = [rel for rel, s in files.items() if not (root / rel).exists() or (root / rel).read_text("utf-8") != render(s)]
    known = {root / rel for rel in files}
    out += [str(p.relative_to(root)) for p in root.rglob("*.json") if p not in known]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    if a.check:
        bad = stale()
        for b in bad:
            print(f"stale schema: {b}", file=sys.stderr)
        return 1 if bad else 0
    for rel in write():
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
