"""Message catalogue: flat JSON files in static/i18n/ (zh is the default, en the fallback for missing keys).

The same files serve the browser (fetched as static JSON) and the server side (pushed messages, setup
banner), so one translation covers both.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

CATALOGUE_DIR = Path(__file__).parent / "static" / "i18n"
LANGUAGES = ("zh", "en")
DEFAULT = "zh"


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        lang = DEFAULT
    return json.loads((CATALOGUE_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def t(lang: str, key: str, **params) -> str:
    """Translate `key`; missing keys fall back to English, then to the key itself (visible, never blank)."""
    text = catalogue(lang).get(key) or catalogue("en").get(key) or key
    for k, v in params.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def kind_name(lang: str, kind: str) -> str:
    key = f"kind.{kind}"
    text = t(lang, key)
    return kind if text == key else text
