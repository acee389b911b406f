"""Held-open detection from live door-contact states.

Controllers report "open too long" (reason 37) themselves only if that alarm is enabled on the board;
the gateway also sees every door contact in each status poll and pushed packet, so it raises
door.held_open itself after `held_open_s` — once per open episode, and not again if the controller
already reported it for this episode.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class _Door:
    open_since: float | None = None
    reported: bool = False


class DoorTracker:
    def __init__(self, held_open_s: float):
        self.held_open_s = held_open_s
        self._doors: dict[int, _Door] = {}

    def update(self, door: int, is_open: bool, now: float) -> float | None:
        """Record a contact state. Returns how long the door was open when it closes, else None."""
        d = self._doors.setdefault(door, _Door())
        if is_open and d.open_since is None:
            d.open_since, d.reported = now, False
        elif not is_open and d.open_since is not None:
            duration = now - d.open_since
            d.open_since, d.reported = None, False
            return duration
        return None

    def reported_by_controller(self, door: int, now: float) -> None:
        d = self._doors.setdefault(door, _Door())
        if d.open_since is None:
            d.open_since = now
        d.reported = True

    def due(self, now: float) -> list[tuple[int, float]]:
        """Doors open for at least held_open_s that were not reported yet (each returned once per episode)."""
        out = []
        for door, d in sorted(self._doors.items()):
            if d.open_since is not None and not d.reported and now - d.open_since >= self.held_open_s:
                d.reported = True
                out.append((door, now - d.open_since))
        return out

    def open_doors(self) -> list[int]:
        return [door for door, d in sorted(self._doors.items()) if d.open_since is not None]
