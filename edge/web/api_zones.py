"""Zone editor API: list zones (any user), create / update / delete (installer), written to edge.yaml."""
from __future__ import annotations

import typing

from aiohttp import web

from edge.config.zones import ZoneConfig, polygon_problem

from .http import CONSOLE, ApiError, json_response, read_json, requires, user
from .zones_file import ZoneEditError

ZONE_TYPES = list(typing.get_args(ZoneConfig.model_fields["type"].annotation))


async def list_zones(request: web.Request) -> web.Response:
    cfg = request.app[CONSOLE].ctx.config
    return json_response({
        "zones": [z.model_dump(mode="json") for z in cfg.zones],
        "cameras": [{"id": c.id, "name": c.name} for c in cfg.cameras],
        "stations": [{"id": s.id, "name": s.name} for s in cfg.stations],
        "types": ZONE_TYPES,
        "editable": request.app[CONSOLE].ctx.config_path is not None,
    })


def _check_polygon(fields: dict) -> None:
    poly = fields.get("polygon")
    if poly is None:
        return
    if not isinstance(poly, list) or not all(isinstance(p, list) and len(p) == 2 and
                                             all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)
                                             for p in poly):
        raise ApiError(400, "invalid polygon: polygon must be a list of [x, y] number pairs")
    problem = polygon_problem([(float(x), float(y)) for x, y in poly])
    if problem:
        raise ApiError(400, f"invalid polygon: {problem}")


async def _change(request: web.Request, op: str, zone_id: str | None) -> web.Response:
    console = request.app[CONSOLE]
    fields = {} if op == "delete" else await read_json(request)
    if op != "delete":
        _check_polygon(fields)
        if op == "create":
            for key in ("id", "camera", "type", "polygon"):
                if not fields.get(key):
                    raise ApiError(400, f"missing field {key!r}")
    try:
        result = await console.zones_file.change(op, zone_id, fields, user(request)["name"])
    except ZoneEditError as exc:
        raise ApiError(exc.status, str(exc), problems=exc.problems) from None
    console.ctx.emit_new("config.changed", console.ctx.gateway_id,
                         {"section": "zones", "op": op, "zone": result["zone"].get("id"), "by": user(request)["name"],
                          "config_hash": result["config_hash"], "applied": result["applied"]})
    return json_response(result, status=201 if op == "create" else 200)


@requires("installer")
async def create_zone(request: web.Request) -> web.Response:
    return await _change(request, "create", None)


@requires("installer")
async def update_zone(request: web.Request) -> web.Response:
    return await _change(request, "update", request.match_info["id"])


@requires("installer")
async def delete_zone(request: web.Request) -> web.Response:
    return await _change(request, "delete", request.match_info["id"])


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/zones", list_zones)
    r.add_post("/api/zones", create_zone)
    r.add_put("/api/zones/{id}", update_zone)
    r.add_delete("/api/zones/{id}", delete_zone)
