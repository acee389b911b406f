"""Markdown configuration reference generated from the pydantic models (README embeds it; a test keeps it fresh)."""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .models import Config


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return " \\| ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if isinstance(tp, type):
        return tp.__name__ if not issubclass(tp, BaseModel) else tp.__name__
    return str(tp).replace("typing.", "")


def _models_in(tp: Any) -> list[type[BaseModel]]:
    out = []
    for a in typing.get_args(tp) or ():
        out += _models_in(a)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out.append(tp)
    return out


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return "(computed)"
        return "`[]`" if v == [] else "`{}`" if v == {} else ("(defaults)" if isinstance(v, BaseModel) else f"`{v}`")
    if field.default is None:
        return "—"
    if field.default == "":
        return '`""`'
    return f"`{field.default}`"


def reference_markdown() -> str:
    lines: list[str] = []
    seen: set[type] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", Config)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines.append(f"#### `{path}` — {model.__name__}")
        if doc and not doc.startswith("Create a new model"):
            lines.append(doc)
        lines.append("")
        lines.append("| key | type | default | meaning |")
        lines.append("|---|---|---|---|")
        for name, f in model.model_fields.items():
            desc = (f.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
            for sub in _models_in(f.annotation):
                if sub not in seen:
                    queue.append((f"{path}.{name}" if path != "(top level)" else name, sub))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
