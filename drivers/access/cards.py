"""What a card presented at a reader the gateway itself drives (OSDP, Wiegand converter) becomes.

Without an `allow` list the gateway only reports the read (`reader.card`): the access decision is made
elsewhere (a controller, the property's own system). With an `allow` list (credentials as `facility:card`
or the plain card text for ASCII readers) the gateway decides and emits access.granted / access.denied.
"""
from __future__ import annotations

from typing import Any

from .wiegand import WiegandCard


def card_event(cfg, card: WiegandCard | None = None, text: str | None = None,
               reader: int | None = None) -> tuple[str, dict[str, Any]]:
    """(kind, payload) for one credential presentation on the reader configured by `cfg`."""
    payload: dict[str, Any] = {"controller": cfg.id}
    if getattr(cfg, "door", None) is not None:
        payload["door"] = cfg.door
    if getattr(cfg, "name", ""):
        payload["door_name"] = cfg.name
    if card is not None:
        payload.update(credential=card.credential, credential_type=card.format.name,
                       facility_code=card.facility, card_number=card.card)
    else:
        payload.update(credential=text or "", credential_type="card")
    if reader:
        payload["reason"] = f"reader {reader}"
    allow = getattr(cfg, "allow", None)
    if allow is None:
        return "reader.card", payload
    granted = payload["credential"] in set(allow)
    payload["reason"] = "on the allow list" if granted else "not on the allow list"
    return ("access.granted" if granted else "access.denied"), payload
