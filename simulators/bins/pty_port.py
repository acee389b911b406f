"""A virtual serial port made of a real pty, with a stable name that survives unplug/replug.

A program opens `path` exactly like /dev/ttyUSB0; the simulator reads and writes the pty master. With
`link_path` the port is published as a symlink (what udev does under /dev/serial/by-id/): `unplug()` closes
the pty — the program's open descriptor sees EOF/EIO like a yanked USB adapter — and removes the symlink;
`plug()` makes a new pty (new /dev/pts/N) and points the symlink at it.

The simulator keeps its own descriptor on the slave side open, so the master never reports EIO merely
because the program closed the port to reopen it.
"""
from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path
from typing import Callable


class PtyPort:
    def __init__(self, link_path: str | Path | None = None):
        self.link_path = Path(link_path) if link_path else None
        self.master: int | None = None
        self._slave: int | None = None
        self.slave_name: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_data: Callable[[bytes], None] | None = None
        self.plugs = 0
        self.dropped_writes = 0

    @property
    def path(self) -> str:
        """What a program should open."""
        if self.link_path is not None:
            return str(self.link_path)
        if self.slave_name is None:
            raise RuntimeError("port is not plugged in")
        return self.slave_name

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> "PtyPort":
        if self.master is not None:
            return self
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass untouched (pyserial sets this again on open)
        os.set_blocking(master, False)
        self.master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self.link_path is not None:
            self.link_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link_path)  # atomic, like udev updating a by-id link
        self.plugs += 1
        if self._on_data is not None:
            self._watch()
        return self

    def unplug(self) -> None:
        if self.master is None:
            return
        if self._loop is not None:
            try:
                self._loop.remove_reader(self.master)
            except Exception:
                pass
        if self.link_path is not None:
            try:
                self.link_path.unlink()
            except FileNotFoundError:
                pass
        for fd in (self.master, self._slave):
            try:
                os.close(fd)  # type: ignore[arg-type]
            except OSError:
                pass
        self.master = self._slave = None
        self.slave_name = None

    def on_data(self, callback: Callable[[bytes], None]) -> None:
        """Call `callback(bytes)` in the event loop whenever the program writes to the port."""
        self._on_data = callback
        self._loop = asyncio.get_running_loop()
        if self.master is not None:
            self._watch()

    def _watch(self) -> None:
        assert self._loop is not None and self.master is not None
        self._loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError:  # should not happen while we hold the slave open; never spin on it
            if self._loop is not None:
                self._loop.remove_reader(self.master)
            return
        if data and self._on_data is not None:
            self._on_data(data)

    def write(self, data: bytes) -> int:
        """Send bytes to the program; returns how many went out (0 while unplugged)."""
        if self.master is None or not data:
            return 0
        try:
            return os.write(self.master, data)
        except (BlockingIOError, OSError):
            self.dropped_writes += 1
            return 0

    def close(self) -> None:
        self.unplug()
        self._on_data = None
