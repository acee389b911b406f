"""An asyncio serial port that notices when the USB-serial adapter disappears.

pyserial opens and configures the port (baud, 8N1 set explicitly from the config, raw mode, an exclusive
lock so `edge probe` cannot fight the running gateway for the bus). Bytes are read from the file descriptor
in an event-loop reader callback, so waiting for a sensor never blocks the loop. An unplugged adapter shows
up as EOF or EIO on that descriptor; the link then closes itself and records why, and the driver reopens it
with backoff.
"""
from __future__ import annotations

import asyncio
import os

import serial

from edge.config.devices import SerialPort


class PortLost(Exception):
    """The serial port is gone (unplugged, EIO) or could not be opened."""


class SerialLink:
    def __init__(self, cfg: SerialPort):
        self.cfg = cfg
        self._ser: serial.Serial | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rx = bytearray()
        self._data = asyncio.Event()
        self.lost_reason: str | None = None
        self.opens = 0
        self.losses = 0
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def open(self) -> None:
        """Open and configure the port; raises PortLost with a readable reason."""
        self.close()
        c = self.cfg
        try:
            ser = serial.Serial(port=c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity,
                                stopbits=c.stopbits, timeout=0, write_timeout=0, exclusive=True)
        except Exception as exc:  # SerialException, OSError, ValueError, termios.error: all mean "no port"
            raise PortLost(f"cannot open {c.port}: {exc}") from None
        self._ser = ser
        try:
            self._fd = ser.fileno()
            os.set_blocking(self._fd, False)
            try:
                ser.reset_input_buffer()  # whatever piled up while nobody listened is stale
            except (serial.SerialException, OSError):
                pass
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._readable)
        except Exception as exc:
            self.close()
            raise PortLost(f"cannot use {c.port}: {exc}") from None
        self.rx.clear()
        self.lost_reason = None
        self.opens += 1

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)  # type: ignore[arg-type]
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(f"read failed: {exc.strerror or exc}")
            return
        if not data:
            self._lose("device disconnected (EOF)")
            return
        self.bytes_in += len(data)
        self.rx.extend(data)
        self._data.set()

    def _lose(self, reason: str) -> None:
        self.lost_reason = reason
        self.losses += 1
        self.close()
        self._data.set()  # wake a waiting reader so it sees the loss at once

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise PortLost(self.lost_reason or "port not open")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self.bytes_out += n
        except BlockingIOError:
            raise PortLost("port write buffer full (adapter stuck?)") from None
        except OSError as exc:
            self._lose(f"write failed: {exc.strerror or exc}")
            raise PortLost(self.lost_reason) from None

    def take(self) -> bytes:
        """Return and clear everything received so far."""
        data = bytes(self.rx)
        self.rx.clear()
        return data

    async def wait_data(self, timeout: float) -> bool:
        """Wait (real time: bytes move in real time) until new bytes arrive or the port is lost."""
        if self._fd is None:
            raise PortLost(self.lost_reason or "port not open")
        self._data.clear()
        try:  # asyncio.timeout: wait_for can swallow a racing cancel on Python 3.11
            async with asyncio.timeout(max(0.0, timeout)):
                await self._data.wait()
        except TimeoutError:
            return False
        if self._fd is None:
            raise PortLost(self.lost_reason or "port closed")
        return True

    def close(self) -> None:
        if self._fd is not None and self._loop is not None:
            try:
                self._loop.remove_reader(self._fd)
            except Exception:
                pass
        self._fd = None
        if self._ser is not None:
            try:
                self._ser.close()
            except Exception:
                pass
            self._ser = None
