"""Importing modules that may legitimately be absent (CLI and plug-in lists name modules by string)."""
from __future__ import annotations

import importlib
from types import ModuleType


def import_if_present(name: str) -> ModuleType | None:
    """The module, or None when the module itself (or a parent package) does not exist.

    A ModuleNotFoundError raised *inside* the module (a missing dependency) is re-raised: that is a broken
    install, not an absent module.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise
