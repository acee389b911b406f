"""Shared by every command that reads edge.yaml or the store: one place prints config problems the same way."""
from __future__ import annotations

import sys
from pathlib import Path


def load_config_or_exit(path):
    """The validated config, or exit 2 after printing one `FILE:LINE: path: problem` line per problem."""
    from edge.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        raise SystemExit(2) from None


def open_store_or_exit(cfg):
    """The gateway's store, or exit 1 with a plain sentence when the gateway has never run here."""
    from edge.store import Store

    db = Path(cfg.storage.path) / "edge.db"
    if not db.exists():
        print(f"no database at {db} yet (has the gateway run?)", file=sys.stderr)
        raise SystemExit(1)
    return Store(db)
