"""Doctor checks of the box itself: config, secrets, clock, disk, database."""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel

from edge.config import Config, ConfigError, Secret, SecretError, load_config

from ..paths import Layout
from .base import Check, fail, ok, skip

# Nothing this software talks to has a certificate older than this; a clock before it is certainly wrong
# (a Pi without RTC boots at 1970 or at the last fake-hwclock save until NTP answers).
PLAUSIBLE_AFTER = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
MIN_FREE_BYTES = 512 * 1024 * 1024
MIN_FREE_FRACTION = 0.05


def check_config(path: Path) -> tuple[Check, Config | None]:
    title = "configuration valid"
    if not path.exists():
        return fail("config", title, f"{path} does not exist",
                    "provision the gateway first: `sudo edge provision --gateway-id ... --compound-id ... "
                    "--county-code ...` (installer guide §5), or pass the right file with -c"), None
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        lines = [str(p) for p in exc.problems]
        first = lines[0] if lines else str(exc)
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        return fail("config", title, f"{first}{more}",
                    f"edit {path} at the line shown, then run `edge check-config {path}`",
                    problems=lines), None
    return ok("config", title, f"{path}: {len(cfg.devices)} devices, {len(cfg.cameras)} cameras, "
                               f"{len(cfg.zones)} zones", config_hash=cfg.config_hash()), cfg


def _secrets(model, loc: str = ""):
    """Every Secret in the config tree, with its dotted location."""
    if isinstance(model, Secret):
        yield loc, model
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from _secrets(getattr(model, name), f"{loc}.{name}" if loc else name)
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            yield from _secrets(item, f"{loc}[{i}]")
    elif isinstance(model, dict):
        for k, v in model.items():
            yield from _secrets(v, f"{loc}.{k}")


def check_secrets(cfg: Config, layout: Layout) -> Check:
    title = "secrets readable"
    found = list(_secrets(cfg))
    if not found:
        return skip("secrets", title, "no secrets in the configuration")
    dropin = layout.credentials_dropin.read_text() if layout.credentials_dropin.exists() else ""
    problems, fixes = [], []
    for loc, s in found:
        if s.file is not None and not Path(s.file).is_absolute() and f"LoadCredential={s.file}:" not in dropin:
            problems.append(f"{loc}: credential {s.file} is not passed to the service")
            fixes.append(f"put it in {layout.credentials}/{s.file}, run `edge provision`, restart the service")
            continue
        if s.env is not None and s.env not in os.environ:
            problems.append(f"{loc}: environment variable {s.env} is not set here")
            fixes.append(f"set {s.env} for the service (`systemctl edit edge-gateway`: [Service] Environment=) "
                         f"and in this shell; better: use a credential file")
            continue
        try:
            s.resolve()
        except SecretError as exc:
            problems.append(f"{loc}: {exc}")
            fixes.append("run the doctor as root (sudo) — secrets are readable by root and the service only"
                         if "Permission denied" in str(exc) else
                         f"put the secret in {layout.credentials}/ (mode 600) and run `edge provision`")
    if problems:
        return fail("secrets", title, "; ".join(problems), "; ".join(dict.fromkeys(fixes)), count=len(found))
    return ok("secrets", title, f"{len(found)} secret(s) found", count=len(found))


# ---- clock ---------------------------------------------------------------------------------------------------
class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only `status` and the return value are read
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time", _Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long),
                ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("_pad", ctypes.c_int * 11)]


def ntp_synchronised() -> tuple[bool | None, str]:
    """(synchronised?, how we know). None when neither timedatectl nor adjtimex can tell."""
    if shutil.which("timedatectl"):
        try:
            r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                               text=True, timeout=5)
            if r.returncode == 0 and r.stdout.strip() in ("yes", "no"):
                return r.stdout.strip() == "yes", "timedatectl"
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
        if state >= 0:
            # TIME_ERROR (5) or STA_UNSYNC (0x40): the kernel's clock is not disciplined by NTP
            return not (state == 5 or tx.status & 0x40), "adjtimex"
    except (OSError, AttributeError):
        pass
    return None, "none"


def check_clock(not_before: dt.datetime | None = None) -> Check:
    title = "clock synchronised"
    now = dt.datetime.now(dt.timezone.utc)
    # a day of slack: CAs issue with a start time of "now" by their own clock
    floor = max(PLAUSIBLE_AFTER, not_before - dt.timedelta(days=1)) if not_before else PLAUSIBLE_AFTER
    shown = f"{now:%Y-%m-%d %H:%M} UTC"
    if now < floor:
        return fail("clock", title, f"clock says {shown}: that is before {floor:%Y-%m-%d}, TLS will fail",
                    "connect the network and run `sudo timedatectl set-ntp true`; if NTP (UDP 123) is blocked, "
                    "set it by hand: sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'", now=now.isoformat())
    synced, source = ntp_synchronised()
    if synced:
        return ok("clock", title, f"{shown}, synchronised ({source})", now=now.isoformat(), source=source)
    if synced is False and source == "timedatectl":
        return fail("clock", title, f"{shown}, NOT synchronised with NTP",
                    "sudo timedatectl set-ntp true; check `timedatectl timesync-status`; the network must allow "
                    "UDP 123 to the NTP server (set NTP= in /etc/systemd/timesyncd.conf for a local one)",
                    now=now.isoformat(), source=source)
    # No systemd time service to ask (a container, another init): the kernel flag alone is not proof either way,
    # so fall back to the plausibility check above, and say so.
    return ok("clock", title, f"{shown}, plausible (no NTP status from timedatectl; kernel: "
                              f"{'synchronised' if synced else 'unsynchronised' if synced is False else 'unknown'})",
              now=now.isoformat(), source=source)


# ---- disk ----------------------------------------------------------------------------------------------------
def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_disk(cfg: Config) -> Check:
    title = "disk space"
    where = _existing(Path(cfg.storage.path))
    du = shutil.disk_usage(where)
    ours = sum(f.stat().st_size for f in Path(cfg.storage.path).rglob("*") if f.is_file()) \
        if Path(cfg.storage.path).is_dir() else 0
    budget = (cfg.storage.max_db_mb + cfg.storage.max_media_mb) * 2**20
    detail = {"path": str(where), "free_bytes": du.free, "total_bytes": du.total, "used_by_gateway": ours,
              "budget_bytes": int(budget)}
    summary = f"{_gib(du.free)} free of {_gib(du.total)} at {where}; gateway uses {_gib(ours)} of {_gib(budget)}"
    if du.free < MIN_FREE_BYTES or du.free < MIN_FREE_FRACTION * du.total:
        return fail("disk", title, "almost full: " + summary,
                    "free space (old images: `sudo apt-get clean`, `journalctl --vacuum-size=50M`) or lower "
                    "storage.max_db_mb / storage.max_media_mb in edge.yaml", **detail)
    if budget > du.free + ours:
        return fail("disk", title, "storage budgets do not fit: " + summary,
                    f"lower storage.max_db_mb + storage.max_media_mb below {_gib(du.free + ours)} in edge.yaml, "
                    f"or use a bigger card / an SSD", **detail)
    return ok("disk", title, summary, **detail)


def check_database(cfg: Config) -> Check:
    """PRAGMA integrity_check on a read-only connection.

    Not edge.store.Store: opening a Store runs migrations (a write) — the doctor must never change the data of
    a gateway that may be running. WAL side files a root doctor had to create are handed back to the owner of
    the database, or the service (a dynamic user) could not open them any more.
    """
    title = "database integrity"
    db = Path(cfg.storage.path) / "edge.db"
    if not db.exists():
        return ok("database", title, f"no database yet at {db} (created on first start)")
    side = [Path(str(db) + s) for s in ("-wal", "-shm")]
    existed = {p: p.exists() for p in side}
    t0 = time.monotonic()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if any(w in str(exc) for w in ("malformed", "not a database", "corrupt")):
            result = [str(exc)]  # so damaged that the check itself cannot run
        else:
            return fail("database", title, f"cannot check {db}: {exc}",
                        "stop the gateway (`sudo systemctl stop edge-gateway`) and run `edge doctor` again; if "
                        "it still fails the card may be failing: back up and replace it")
    finally:
        st = db.stat()
        for p, was in existed.items():
            if not was and p.exists() and os.geteuid() == 0:
                os.chown(p, st.st_uid, st.st_gid)
    took = round(time.monotonic() - t0, 2)
    if result == ["ok"]:
        return ok("database", title, f"{db}: ok ({_gib(db.stat().st_size)}, {took} s)", seconds=took)
    result = [r.replace("*** in database main ***", "").strip() for r in result]
    return fail("database", title, f"{db} is damaged: {'; '.join(r for r in result[:3] if r)}",
                "stop the gateway, move edge.db (and -wal/-shm) aside so it starts a new one, and tell support; "
                "damage usually means the SD card is worn out or power was cut: replace the card / use an SSD",
                problems=result[:20])
