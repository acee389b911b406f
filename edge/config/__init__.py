"""edge.yaml: pydantic v2 models (extra="forbid") and a loader with FILE:LINE error messages."""
from .base import Secret, SecretError
from .loader import ConfigError, ConfigProblem, load_config, load_config_text
from .models import Config

__all__ = ["Config", "ConfigError", "ConfigProblem", "Secret", "SecretError", "load_config", "load_config_text"]
