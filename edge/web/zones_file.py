"""Zone editor back end: change `zones:` in edge.yaml without losing the installer's comments, then apply.

Steps, all under one lock so two browsers cannot interleave:
1. read the file as it is on disk now (not the copy loaded at start: someone may have edited it),
2. change the zones list with ruamel.yaml round-trip (comments, key order and flow style survive),
3. validate the whole new text with `load_config_text` (every rule, incl. cross references) -> ConfigError,
4. keep a timestamped backup `edge.yaml.bak-YYYYmmdd-HHMMSS` (the newest web.config_backups are kept),
5. write a temp file, fsync, rename over edge.yaml (atomic), fsync the directory,
6. apply without restart: ctx.config = new config, and call the hook `ctx.services["zones_changed"]`.

Hook contract (for edge/analytics): `ctx.services["zones_changed"] = fn` where `fn(config)` receives the new
validated `edge.config.Config` (read `config.zones`, `config.stations`, ...). It may be sync or async; an
exception is logged and reported to the installer ("saved, but not applied"), the file stays written.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from edge.config import ConfigError, load_config_text

log = logging.getLogger("edge.web.zones")

# Fields the editor may set. Anything else already on a zone (dwell_s, classes, ...) is kept as written.
EDITABLE = ("id", "camera", "type", "name", "polygon", "station", "dwell_s", "clear_s", "min_overlap",
            "clutter_detection")
DECIMALS = 4


class ZoneEditError(Exception):
    def __init__(self, message: str, status: int = 400, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = problems or []


def _yaml(text: str = "") -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines the installer wrote
    # keep the file's own list style ("key:\n  - item" or "key:\n- item"); ruamel re-indents uniformly
    m = re.search(r"^[A-Za-z_][^\n]*:[ \t]*\n( *)- ", text, re.M)
    offset = len(m.group(1)) if m else 2
    y.indent(mapping=2, sequence=offset + 2, offset=offset)
    return y


def _flow_polygon(points: list) -> CommentedSeq:
    seq = CommentedSeq()
    for x, y in points:
        pair = CommentedSeq([round(float(x), DECIMALS), round(float(y), DECIMALS)])
        pair.fa.set_flow_style()
        seq.append(pair)
    seq.fa.set_flow_style()
    return seq


def _drop_leading_comment(root: CommentedMap, deleted_index: int, empty: bool) -> None:
    """ruamel keeps the comment above the first list item on the `zones:` key, not on the item: drop it with
    the item (it described that zone). An emptied list must become `zones: []`: a block list with no items
    but a dangling comment would not be valid YAML."""
    entry = root.ca.items.get("zones")
    if empty:
        root.ca.items.pop("zones", None)
        seq = CommentedSeq()
        seq.fa.set_flow_style()
        root["zones"] = seq
        return
    if deleted_index != 0 or not entry:
        return
    if len(entry) > 3 and entry[3]:
        entry[3] = None
    eol = entry[2] if len(entry) > 2 else None
    if eol is not None and hasattr(eol, "value") and eol.value.count("\n") > 1:
        first = eol.value.split("\n", 1)[0]  # "zones:  # about zones" stays, the lines below it go
        eol.value = first + "\n" if first.strip().startswith("#") else "\n"


def _clean_fields(zone: dict[str, Any]) -> dict[str, Any]:
    unknown = set(zone) - set(EDITABLE)
    if unknown:
        raise ZoneEditError(f"unknown zone field(s): {', '.join(sorted(unknown))}")
    poly = zone.get("polygon")
    if poly is not None:
        if not isinstance(poly, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 and
                                                 all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                     for c in p) for p in poly):
            raise ZoneEditError("polygon must be a list of [x, y] number pairs")
        if len(poly) > 64:
            raise ZoneEditError("a polygon may have at most 64 points")
    return zone


class ZonesFile:
    def __init__(self, ctx, backups: int = 10):
        self.ctx = ctx
        self.backups = backups
        self._lock = asyncio.Lock()
        self.saves = 0
        self.rejected = 0

    @property
    def path(self) -> Path | None:
        return Path(self.ctx.config_path) if self.ctx.config_path else None

    async def change(self, op: str, zone_id: str | None, fields: dict[str, Any] | None, actor: str) -> dict:
        """op: create | update | delete. Returns {"zone": ..., "applied": bool, "apply_error": str|None,
        "backup": name}. Raises ZoneEditError (400 invalid, 404 unknown zone, 409 no/changed file)."""
        if self.path is None:
            raise ZoneEditError("the gateway was started without a config file, so zones cannot be saved", 409)
        async with self._lock:
            text = await asyncio.to_thread(self.path.read_text, "utf-8")
            new_text, target = self._edit(text, op, zone_id, _clean_fields(dict(fields or {})))
            try:
                cfg = load_config_text(new_text, str(self.path))
            except ConfigError as exc:
                self.rejected += 1
                zone_problems = [p for p in exc.problems if p.path.startswith("zones")] or exc.problems
                raise ZoneEditError(zone_problems[0].problem + (f" ({zone_problems[0].expected})"
                                                                if zone_problems[0].expected else ""),
                                    400, [f"{p.path}: {p.problem}" for p in exc.problems]) from None
            backup = await asyncio.to_thread(self._write, text, new_text)
            self.saves += 1
        log.info("zones changed from the console", extra={"actor": actor, "op": op, "zone": target,
                                                          "backup": backup})
        applied, apply_error = await self._apply(cfg)
        z = next((z for z in cfg.zones if z.id == target), None)
        zone = z.model_dump(mode="json") if z is not None else {"id": target}
        return {"zone": zone, "applied": applied, "apply_error": apply_error, "backup": backup,
                "config_hash": cfg.config_hash()}

    def _edit(self, text: str, op: str, zone_id: str | None, fields: dict[str, Any]) -> tuple[str, str]:
        """Returns (new file text, id of the zone afterwards)."""
        y = _yaml(text)
        root = y.load(text)
        if not isinstance(root, CommentedMap):
            raise ZoneEditError("the config file is not a YAML mapping", 409)
        zones = root.get("zones")
        if zones is None:
            zones = CommentedSeq()
            root["zones"] = zones
        if not isinstance(zones, CommentedSeq):
            raise ZoneEditError("zones: in the config file is not a list", 409)
        idx = next((i for i, z in enumerate(zones) if isinstance(z, dict) and z.get("id") == zone_id), None)
        if op == "delete":
            if idx is None:
                raise ZoneEditError(f"no zone {zone_id!r}", 404)
            target = zone_id
            del zones[idx]
            _drop_leading_comment(root, idx, empty=not zones)
        elif op == "create":
            new_id = fields.get("id")
            if any(isinstance(z, dict) and z.get("id") == new_id for z in zones):
                raise ZoneEditError(f"a zone {new_id!r} exists already", 409)
            node = CommentedMap()
            for key in EDITABLE:
                if key in fields and fields[key] is not None:
                    node[key] = _flow_polygon(fields[key]) if key == "polygon" else fields[key]
            zones.append(node)
            target = new_id
        elif op == "update":
            if idx is None:
                raise ZoneEditError(f"no zone {zone_id!r}", 404)
            node = zones[idx]
            new_id = fields.get("id", zone_id)
            if new_id != zone_id and any(isinstance(z, dict) and z.get("id") == new_id for z in zones):
                raise ZoneEditError(f"a zone {new_id!r} exists already", 409)
            for key, value in fields.items():
                if value is None or value == "":
                    if key in ("station", "name"):
                        node.pop(key, None)
                    continue
                node[key] = _flow_polygon(value) if key == "polygon" else value
            target = new_id
        else:
            raise ZoneEditError(f"unknown operation {op!r}")
        buf = io.StringIO()
        y.dump(root, buf)
        return buf.getvalue(), target

    def _write(self, old_text: str, new_text: str) -> str:
        path = self.path
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        backup.write_text(old_text, encoding="utf-8")
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o640
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new_text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
        old = sorted(path.parent.glob(f"{path.name}.bak-*"))
        for stale in old[:-self.backups]:
            stale.unlink(missing_ok=True)
        return backup.name

    async def _apply(self, cfg) -> tuple[bool, str | None]:
        self.ctx.config = cfg
        gw = self.ctx.services.get("gateway")
        if gw is not None and hasattr(gw, "config"):
            gw.config = cfg
        hook = self.ctx.services.get("zones_changed")
        if hook is None:
            return False, "no component applies zone changes at run time (restart the gateway to apply them)"
        try:
            r = hook(cfg)
            if asyncio.iscoroutine(r):
                await r
        except Exception as exc:
            log.exception("zones_changed hook failed")
            return False, f"{type(exc).__name__}: {exc}"
        return True, None
