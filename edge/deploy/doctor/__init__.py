"""`edge doctor`: the one command an installer runs on site. A checklist with ✓/✗ and the fix for each ✗."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..paths import Layout
from .base import FAIL, MARK, Check
from .broker import certificate_not_before, check_broker, check_certificate
from .hardware import check_cameras, check_devices, check_serial_ports
from .system import check_clock, check_config, check_database, check_disk, check_secrets

__all__ = ["Check", "render_json", "render_text", "run_doctor"]


def run_doctor(config_path: str | Path, layout: Layout | None = None, timeout_s: float = 5.0) -> list[Check]:
    layout = layout or Layout()
    # Relative secret files are systemd credentials; outside the service look where the unit loads them from,
    # so every check (and the drivers' probes) resolve secrets exactly as the running gateway does.
    if "CREDENTIALS_DIRECTORY" not in os.environ and layout.credentials.is_dir():
        os.environ["CREDENTIALS_DIRECTORY"] = str(layout.credentials)
    checks: list[Check] = []
    cfg_check, cfg = check_config(Path(config_path))
    checks.append(cfg_check)
    checks.append(check_clock(certificate_not_before(cfg) if cfg else None))
    if cfg is None:
        return checks
    checks.append(check_secrets(cfg, layout))
    checks.append(check_disk(cfg))
    checks.append(check_database(cfg))
    checks += check_serial_ports(cfg)
    checks += check_devices(cfg, timeout_s)
    checks += check_cameras(cfg, timeout_s)
    checks += check_broker(cfg, layout, timeout_s)
    checks.append(check_certificate(cfg, layout))
    return checks


def _one_line(text: str) -> str:
    return " / ".join(part.strip() for part in str(text).splitlines() if part.strip())


def render_text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{MARK[c.status]} {c.title}: {_one_line(c.summary)}")
        if c.status == FAIL and c.fix:
            lines.append(f"    fix: {_one_line(c.fix)}")
    failed = sum(c.failed for c in checks)
    lines.append("")
    lines.append("all checks passed" if not failed else f"{failed} problem(s) found — fix the ✗ lines above, "
                                                         f"then run `edge doctor` again")
    return "\n".join(lines)


def render_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.failed for c in checks), "checks": [c.as_dict() for c in checks]},
                      ensure_ascii=False, indent=2, default=str)
