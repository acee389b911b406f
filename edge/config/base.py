"""Shared building blocks for config models: strict base model, ids, secrets, durations."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                          description="identifier: letters, digits, '-', '_', '.', up to 64 characters")]


class Strict(BaseModel):
    """Every config section: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class SecretError(ValueError):
    pass


class Secret(Strict):
    """A secret value that comes from a file (e.g. a systemd credential), an environment variable, or
    (discouraged, for demos) inline. Exactly one of file / env / value."""

    file: Path | None = Field(default=None, description="read the secret from this file (trailing newline stripped)")
    env: str | None = Field(default=None, description="read the secret from this environment variable")
    value: str | None = Field(default=None, description="inline secret (avoid outside demos)")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        # A bare string is an inline value; "env:NAME" and "file:/path" are shorthands.
        if isinstance(data, str):
            if data.startswith("env:"):
                return {"env": data[4:]}
            if data.startswith("file:"):
                return {"file": data[5:]}
            return {"value": data}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "Secret":
        given = [k for k in ("file", "env", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of file, env or value")
        return self

    def resolve(self) -> str:
        if self.value is not None:
            return self.value
        if self.env is not None:
            v = os.environ.get(self.env)
            if v is None:
                raise SecretError(f"environment variable {self.env} is not set")
            return v
        # systemd LoadCredential= puts credentials under $CREDENTIALS_DIRECTORY; a relative path is looked up there.
        path = Path(self.file)  # type: ignore[arg-type]
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and cred_dir:
            path = Path(cred_dir) / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None

    def __repr__(self) -> str:  # never print secret values
        src = f"file={self.file}" if self.file else f"env={self.env}" if self.env else "value=***"
        return f"Secret({src})"
