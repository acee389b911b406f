"""SQLite store: events, outbox, alerts, devices, media index, migrations, retention."""
from . import migrations
from .db import Store, StoreError

__all__ = ["Store", "StoreError", "migrations"]
