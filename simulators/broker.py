"""A real Mosquitto process (tests and the demo): free port, generated config, start/stop/kill/restart.

The demo and the tests never use the system mosquitto service: the uplink needs MQTT 5 and a broker we can
kill and restart at will.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class MosquittoBroker:
    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "", tls_port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_conf(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        body = self.extra_conf if "listener" in self.extra_conf else (
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n" + self.extra_conf)
        conf.write_text(
            # as root, mosquitto drops to user "mosquitto", which cannot write into 0700 temp dirs: no log and no
            # persistence file, so a restart silently lost every session. "user root" keeps it able to write.
            ("user root\n" if os.geteuid() == 0 else "")
            + f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
            f"log_dest file {self.log_path}\nlog_type all\nmax_queued_messages 0\n" + body)
        return conf

    def start(self, timeout: float = 10.0) -> "MosquittoBroker":
        if not os.path.exists(MOSQUITTO):
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        conf = self.write_conf()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err} {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> "MosquittoBroker":
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
