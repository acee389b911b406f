"""Doctor checks of what is wired to the box: serial ports, readers/sensors, cameras.

The answering checks are the drivers' own probes (their authors know what "answering" means), imported lazily:
  drivers.access.probe.probe_device(device_cfg, timeout_s)  -> {ok, summary, fix, detail}
  drivers.bins.probe.probe_device(device_cfg, timeout_s)    -> {ok, summary, fix, detail}
  drivers.cameras.probe.probe_camera(camera_cfg, timeout_s) -> {ok, summary, fix, detail: {width, height, fps}}
"""
from __future__ import annotations

import grp
import importlib
import os
import stat
from typing import Any

from edge.config import Config

from .base import Check, call_with_deadline, fail, ok, run_parallel

ACCESS_TYPES = {"uhppote", "osdp", "wiegand_serial"}
BIN_TYPES = {"modbus_level", "uart_level"}


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def check_serial_ports(cfg: Config) -> list[Check]:
    ports: dict[str, list[str]] = {}
    for d in cfg.devices:
        serial = getattr(d, "serial", None)
        if hasattr(serial, "port"):
            ports.setdefault(serial.port, []).append(d.id)
    out = []
    for port, users in ports.items():
        cid, title = f"serial:{port}", f"serial port {port} ({', '.join(users)})"
        if not os.path.exists(port):
            by_id = sorted(os.listdir("/dev/serial/by-id")) if os.path.isdir("/dev/serial/by-id") else []
            seen = f"; adapters seen: {', '.join(by_id)}" if by_id else "; no USB serial adapter is plugged in"
            out.append(fail(cid, title, f"{port} does not exist{seen}",
                            "plug in the RS-485/USB adapter (check `dmesg | tail`), and name it by "
                            "/dev/serial/by-id/... in edge.yaml so the name survives re-plugging"))
            continue
        st = os.stat(port)
        if not stat.S_ISCHR(st.st_mode):
            out.append(fail(cid, title, f"{port} is not a character device",
                            "point devices[].serial.port at the adapter's /dev/tty* or /dev/serial/by-id/* name"))
            continue
        try:
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            os.close(fd)
        except OSError as exc:
            out.append(fail(cid, title, f"cannot open {port}: {exc.strerror}",
                            "run the doctor with sudo; if the gateway is running it may hold the port (that is "
                            "fine); otherwise check the adapter"))
            continue
        group = _group_name(st.st_gid)
        service_can = group in ("dialout", "video") or bool(st.st_mode & stat.S_IROTH and st.st_mode & stat.S_IWOTH)
        detail = {"real_path": os.path.realpath(port), "group": group, "mode": oct(st.st_mode & 0o777)}
        if not service_can and port.startswith("/dev/tty"):
            out.append(fail(cid, title, f"{port} belongs to group {group}, the service only has dialout/video",
                            "add a udev rule setting GROUP=\"dialout\" for this adapter", **detail))
            continue
        out.append(ok(cid, title, f"present ({detail['real_path']}, group {group})", **detail))
    return out


def _load_probe(module: str, func: str) -> tuple[Any, str | None]:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None, "driver not installed"
        return None, f"driver needs the Python package {exc.name!r}, which is not installed"
    fn = getattr(mod, func, None)
    if fn is None:
        return None, f"driver not installed ({module} has no {func}())"
    return fn, None


def _probe_check(cid: str, title: str, module: str, func: str, cfg_item: Any, timeout_s: float) -> Check:
    fn, why = _load_probe(module, func)
    if fn is None:
        return fail(cid, title, why or "driver not installed",
                    "this software release lacks the driver: update it (run systemd/install.sh of a release that "
                    "has it), or remove the device from edge.yaml")
    try:
        res = call_with_deadline(lambda: fn(cfg_item, timeout_s), timeout_s + 5)
    except TimeoutError as exc:
        return fail(cid, title, f"probe hung: {exc}", "check wiring and power of the device; then re-run the doctor")
    except Exception as exc:  # a probe bug must not stop the other checks; show it
        return fail(cid, title, f"probe crashed: {type(exc).__name__}: {exc}",
                    "report this to support with the output of `edge doctor --json`")
    if not isinstance(res, dict) or "ok" not in res:
        return fail(cid, title, f"probe returned {res!r}", "report this to support (driver probe contract)")
    detail = res.get("detail") if isinstance(res.get("detail"), dict) else {"detail": res.get("detail")}
    summary = str(res.get("summary") or ("answering" if res["ok"] else "not answering"))
    if res["ok"]:
        return ok(cid, title, summary, **(detail or {}))
    return fail(cid, title, summary, str(res.get("fix") or "check wiring, power and the address in edge.yaml"),
                **(detail or {}))


def _device_thunk(d, timeout_s: float):
    module = "drivers.access.probe" if d.type in ACCESS_TYPES else "drivers.bins.probe"
    return lambda: _probe_check(f"device:{d.id}", f"{d.type} {d.id} answering", module, "probe_device", d, timeout_s)


def check_devices(cfg: Config, timeout_s: float) -> list[Check]:
    return run_parallel([_device_thunk(d, timeout_s) for d in cfg.devices if d.type in ACCESS_TYPES | BIN_TYPES])


def _camera_check(c, timeout_s: float) -> Check:
    chk = _probe_check(f"camera:{c.id}", f"camera {c.id} reachable", "drivers.cameras.probe", "probe_camera", c,
                       timeout_s)
    d = chk.detail
    if chk.status == "ok" and {"width", "height"} <= set(d) and f"{d['width']}" not in chk.summary:
        fps = d.get("fps")
        chk.summary += f" — {d['width']}×{d['height']}" + (f" @ {float(fps):.1f} fps" if fps else "")
    return chk


def check_cameras(cfg: Config, timeout_s: float) -> list[Check]:
    return run_parallel([lambda c=c: _camera_check(c, timeout_s) for c in cfg.cameras])
