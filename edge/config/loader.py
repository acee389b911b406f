"""Load edge.yaml and turn every problem into `FILE:LINE: dotted.path: what is wrong (what is expected)`.

ruamel.yaml's round-trip loader keeps the line of every key and list item, which is what lets an installer
jump straight to the mistake; pydantic's error locations are walked through that tree to find the line.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .models import Config, cross_check


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    problem: str
    expected: str

    def __str__(self) -> str:
        exp = f" ({self.expected})" if self.expected else ""
        return f"{self.file}:{self.line}: {self.path}: {self.problem}{exp}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, int) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _unwrap(tp: Any, data: Any) -> Any:
    """Strip Optional/Annotated and pick the union member the data selects by its `type` tag."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            if len(models) > 1 and isinstance(data, dict):
                tag = data.get("type")
                for m in models:
                    f = m.model_fields.get("type")
                    if f is not None and tag in typing.get_args(f.annotation):
                        return m
                return None
            tp = models[0] if models else (members[0] if members else None)
            continue
        return tp


def _walk(loc: tuple, root: Any, file_lines: int) -> tuple[int, tuple, type | None, Any]:
    """Follow an error location through the YAML tree and the model classes.

    Returns (line, clean_loc, model class owning the last key, field info of the last key).
    Discriminator tags that pydantic inserts into union locations are dropped from the path.
    """
    node: Any = root
    tp: Any = Config
    line = 1
    clean: list = []
    owner: type | None = None
    field = None
    for part in loc:
        tp = _unwrap(tp, node)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str) \
                and part not in tp.model_fields and isinstance(node, dict) and node.get("type") == part:
            continue  # union tag inserted by pydantic
        if isinstance(part, str) and part in ("function-after", "function-before", "function-plain"):
            continue
        clean.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            tp = field.annotation if field is not None else None
        else:
            origin = typing.get_origin(tp)
            args = typing.get_args(tp)
            owner, field = None, None
            if origin in (list, tuple) and args:
                tp = args[0]
            elif origin is dict and len(args) == 2:
                tp = args[1]
            else:
                tp = None
        if isinstance(node, CommentedMap):
            key = part
            if key not in node and isinstance(part, int) and str(part) in node:
                key = str(part)
            if key in node:
                try:
                    line = node.lc.key(key)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    pass
                node = node[key]
                continue
            node = None
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line = node.lc.item(part)[0] + 1
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        else:
            node = None
    return min(line, max(file_lines, 1)), tuple(clean), owner, field


_EXPECT = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
    "dict_type": "a mapping of keys to values", "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values", "tuple_type": "a list", "date_from_datetime_parsing":
    "a date like 2026-10-01", "date_parsing": "a date like 2026-10-01", "url_parsing": "a URL like https://host/path",
    "url_scheme": "an http or https URL", "too_short": None, "too_long": None,
}


def _describe(err: dict, owner: type | None, field: Any, clean: tuple) -> tuple[str, str]:
    t = err["type"]
    ctx = err.get("ctx") or {}
    desc = (field.description if field is not None else None) or ""
    if t == "extra_forbidden":
        key = str(clean[-1]) if clean else "?"
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f", did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{key}'{hint}", ("allowed keys: " + ", ".join(allowed)) if allowed else ""
    if t == "missing":
        return "required key is missing", desc or "see docs/examples/edge.yaml"
    if t == "union_tag_invalid":
        return (f"unknown type {ctx.get('tag')!r}", f"one of {ctx.get('expected_tags')}")
    if t == "union_tag_not_found":
        return "missing 'type'", "type: uhppote | osdp | wiegand_serial | modbus_level | uart_level"
    if t == "literal_error":
        return f"{err.get('input')!r} is not allowed", f"one of {ctx.get('expected')}"
    if t in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[t]
        bound = next(iter(ctx.values())) if ctx else "?"
        return f"{err.get('input')!r} is out of range", f"a number {op} {bound}"
    if t == "string_pattern_mismatch":
        return f"{err.get('input')!r} has the wrong format", desc or f"matching {ctx.get('pattern')}"
    if t == "too_short":
        return f"too few items (got {ctx.get('actual_length')})", f"at least {ctx.get('min_length')}"
    if t == "too_long":
        return f"too many items (got {ctx.get('actual_length')})", f"at most {ctx.get('max_length')}"
    if t in ("value_error", "assertion_error"):
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return msg, desc
    expected = _EXPECT.get(t) or desc
    got = err.get("input")
    shown = f"{got!r} is not valid" if isinstance(got, (str, int, float, bool)) else err["msg"]
    if isinstance(got, (str, int, float, bool)):
        shown = f"{got!r}: {err['msg'][0].lower()}{err['msg'][1:]}"
    return shown, expected


def parse_yaml(text: str, filename: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1) if mark else 1
        raise ConfigError([ConfigProblem(filename, line, "(yaml)", f"{exc.problem or exc.context}",
                                         "valid YAML; check indentation and quotes")]) from None
    except Exception as exc:  # ruamel raises several non-marked errors (e.g. duplicate keys, bad unicode)
        raise ConfigError([ConfigProblem(filename, 1, "(yaml)", str(exc).splitlines()[0], "valid YAML")]) from None


def validate_tree(root: Any, filename: str, text_lines: int = 10**9) -> Config:
    if root is None:
        raise ConfigError([ConfigProblem(filename, 1, "(top level)", "the file is empty",
                                         "a mapping with at least a gateway: section")])
    if not isinstance(root, dict):
        raise ConfigError([ConfigProblem(filename, 1, "(top level)", "not a mapping",
                                         "keys such as gateway:, uplink:, devices:")])
    try:
        cfg = Config.model_validate(_plain(root))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            line, clean, owner, field = _walk(tuple(err["loc"]), root, text_lines)
            problem, expected = _describe(err, owner, field, clean)
            problems.append(ConfigProblem(filename, line, _format_path(clean), problem, expected))
        problems.sort(key=lambda p: p.line)
        raise ConfigError(problems) from None
    problems = []
    for loc, problem, expected in cross_check(cfg):
        line, clean, _, _ = _walk(loc, root, text_lines)
        problems.append(ConfigProblem(filename, line, _format_path(clean), problem, expected))
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return cfg


def load_config_text(text: str, filename: str = "edge.yaml") -> Config:
    root = parse_yaml(text, filename)
    return validate_tree(root, filename, text.count("\n") + 1)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), 0, "(file)", "file not found", "a path to edge.yaml")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), 0, "(file)", f"cannot read: {exc}", "a UTF-8 text file")]) from None
    return load_config_text(text, str(path))
