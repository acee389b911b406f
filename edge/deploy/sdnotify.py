"""sd_notify(3) client: READY=1, WATCHDOG=1, STATUS=, STOPPING=1 to $NOTIFY_SOCKET.

Hand-written on purpose: the protocol is one datagram per message to a Unix socket, and the PyPI clients
(sdnotify, systemd-python) either swallow send errors or need libsystemd headers to build on the Pi.
Here a failed send raises NotifyError so the caller (and the journal) sees it.
"""
from __future__ import annotations

import os
import socket


class NotifyError(OSError):
    pass


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd asked for (WatchdogSec=), or None when the watchdog is off for us.

    Same rules as sd_watchdog_enabled(3): WATCHDOG_USEC must be a positive integer and, when WATCHDOG_PID is
    set, it must be our pid (the variables are inherited by children, which must not ping for us).
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        raise NotifyError(f"WATCHDOG_USEC={usec!r} is not an integer") from None
    if value <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return value / 1_000_000


class Notifier:
    """Sends notifications to the service manager. Without $NOTIFY_SOCKET (not run by systemd) it is a no-op
    that still counts what it would have sent, so health() stays meaningful in a terminal."""

    def __init__(self, address: str | None = None):
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = address or None
        if self.address and self.address[0] not in "/@":
            raise NotifyError(f"NOTIFY_SOCKET={self.address!r} is not a Unix socket path (vsock is not supported)")
        self._sock: socket.socket | None = None
        self.sent = 0
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def _target(self) -> str | bytes:
        assert self.address is not None
        # '@' marks a Linux abstract-namespace socket: the name starts with a NUL byte.
        return b"\0" + self.address[1:].encode() if self.address.startswith("@") else self.address

    def notify(self, **fields: str | int) -> None:
        """notify(READY=1, STATUS="...") sends 'READY=1\\nSTATUS=...'. Raises NotifyError when sending fails."""
        lines = []
        for key, value in fields.items():
            text = str(value)
            if "\n" in text:
                raise ValueError(f"{key}= must be a single line")
            lines.append(f"{key}={text}")
        if not self.enabled:
            self.sent += 1
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(lines).encode(), self._target())
        except OSError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise NotifyError(f"cannot notify systemd at {self.address}: {exc.strerror or exc}") from exc
        self.sent += 1
        self.last_error = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
