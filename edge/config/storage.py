from __future__ import annotations

from pathlib import Path

from pydantic import Field

from .base import Strict


class StorageConfig(Strict):
    path: Path = Field(default=Path("/var/lib/edge-gateway"), description="data directory (SQLite database, media)")
    event_retention_days: float = Field(default=30, gt=0, description="keep events locally this long")
    sent_retention_days: float = Field(default=7, gt=0, description="keep uplinked events this long for resend")
    media_retention_days: float = Field(default=14, gt=0, description="keep evidence images this long")
    max_db_mb: float = Field(default=2048, gt=0, description="database size budget; oldest sent events go first")
    max_media_mb: float = Field(default=2048, gt=0, description="media size budget; oldest media go first")
    outbox_budget_mb: float = Field(default=512, gt=0,
                                    description="disk budget for unsent uplink messages; beyond it evict by priority")
    commit_interval_ms: int = Field(default=100, ge=10, le=1000, description="group-commit interval")


class LoggingConfig(Strict):
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    json_logs: bool | None = Field(default=None, description="JSON lines; default: JSON when stderr is not a TTY")
