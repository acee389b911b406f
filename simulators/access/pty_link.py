"""A pseudo-terminal that stands in for a USB-serial adapter, reachable through a stable symlink
(like /dev/serial/by-id/...), so a test can unplug it (close the master: the driver's reads fail with EIO,
the path disappears) and plug it back (a new pty behind the same path)."""
from __future__ import annotations

import os
import threading
import tty
from pathlib import Path


class PtyLink:
    def __init__(self, link: str | Path):
        self.link = Path(link)
        self.master: int | None = None
        self._slave: int | None = None  # held open so the master never reads EIO while no driver has the port
        self.lock = threading.Lock()

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> "PtyLink":
        if self.master is not None:
            return self
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        tmp = self.link.with_name(self.link.name + ".tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)  # atomic: the path is never missing while plugged
        self.master, self._slave = master, slave
        return self

    def unplug(self) -> None:
        """What pulling the USB plug looks like to the driver: reads fail, then the device node is gone."""
        try:
            os.unlink(self.link)
        except FileNotFoundError:
            pass
        with self.lock:
            for fd in (self.master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self._slave = None

    def read(self, n: int = 4096) -> bytes:
        fd = self.master
        if fd is None:
            return b""
        try:
            return os.read(fd, n)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO: nobody has the other end open
            return b""

    def write(self, data: bytes) -> int:
        fd = self.master
        if fd is None:
            return len(data)
        try:
            return os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return len(data)  # the line is dead; bytes are lost like on a real cable
