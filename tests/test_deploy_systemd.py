"""The unit passes `systemd-analyze verify` and scores ≤ 2.5 offline; install.sh works in a throwaway root
(idempotent, uninstall keeps config and data, purge removes them); the .deb carries the same files."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "edge-gateway.service"
INSTALL = SYSTEMD / "install.sh"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")


def directives(path: Path) -> list[tuple[str, str, str]]:
    out, section = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in directives(path) if s == section and k == key]


def test_unit_has_the_required_directives():
    one = {("Service", "Type"): "notify", ("Service", "NotifyAccess"): "main", ("Service", "WatchdogSec"): "30",
           ("Service", "Restart"): "on-failure", ("Service", "ProtectSystem"): "strict",
           ("Service", "DevicePolicy"): "closed", ("Service", "UMask"): "0077", ("Service", "DynamicUser"): "yes",
           ("Service", "StateDirectory"): "edge-gateway", ("Service", "CapabilityBoundingSet"): "",
           ("Service", "RestrictAddressFamilies"): "AF_UNIX AF_INET AF_INET6",
           ("Service", "SupplementaryGroups"): "dialout video", ("Service", "NoNewPrivileges"): "yes",
           ("Service", "PrivateTmp"): "yes", ("Service", "ProtectHome"): "yes", ("Service", "ProtectClock"): "yes",
           ("Service", "ProtectKernelTunables"): "yes", ("Service", "ProtectKernelModules"): "yes",
           ("Service", "ProtectControlGroups"): "yes"}
    for (section, key), want in one.items():
        assert values(UNIT, section, key) == [want], (section, key, values(UNIT, section, key))
    assert "@system-service" in values(UNIT, "Service", "SystemCallFilter")
    assert values(UNIT, "Unit", "StartLimitIntervalSec") and values(UNIT, "Unit", "StartLimitBurst")
    assert not values(UNIT, "Service", "PrivateDevices")  # would hide /dev/ttyUSB*
    allowed = " ".join(values(UNIT, "Service", "DeviceAllow"))
    for dev in ("char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-video4linux"):
        assert dev in allowed
    assert values(UNIT, "Service", "LoadCredential") == ["gateway.key:/etc/edge-gateway/credentials/gateway.key"]
    assert "EDGE_TEST_HOOKS" not in UNIT.read_text()  # the freeze hook is never armed in production


def tree(root: Path) -> dict[str, tuple]:
    """path -> (kind, mode, content hash or link target), everything an installer leaves behind."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel.startswith("usr/lib/systemd/system") or rel.endswith("install.log"):
            continue
        st = p.lstat()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", oct(st.st_mode & 0o7777))
        else:
            out[rel] = ("file", oct(st.st_mode & 0o7777), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def run_install(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    r = subprocess.run(["bash", str(INSTALL), "--root", str(root), *args], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def analyze_in_root(root: Path) -> None:
    """`systemd-analyze verify --root` resolves units and ExecStart= inside the root: give it the system's own
    units and an executable where the venv's `edge` will be."""
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    edge = root / "opt/edge-gateway/venv/bin/edge"
    edge.parent.mkdir(parents=True, exist_ok=True)
    edge.write_text("#!/bin/sh\nexit 0\n")
    edge.chmod(0o755)


@needs_analyze
def test_install_in_throwaway_root_verify_and_security(tmp_path):
    root = tmp_path / "root"
    first = run_install(root, "--no-venv")
    assert "Next: provision" in first.stdout
    t = tree(root)
    unit = root / "etc/systemd/system/edge-gateway.service"
    assert unit.read_bytes() == UNIT.read_bytes() and t["etc/systemd/system/edge-gateway.service"][1] == "0o644"
    assert t["etc/edge-gateway"] == ("dir", "0o755")
    assert t["etc/edge-gateway/credentials"] == ("dir", "0o700")
    assert "etc/edge-gateway/edge.yaml" not in t  # written by `edge provision`, never by the installer
    assert t["etc/edge-gateway/edge.yaml.example"][0] == "file"
    assert "SystemMaxUse=" in (root / "etc/systemd/journald.conf.d/edge-gateway.conf").read_text()
    assert "maxsize" in (root / "etc/logrotate.d/edge-gateway").read_text()
    assert t["usr/local/bin/edge"] == ("link", "/opt/edge-gateway/venv/bin/edge")
    assert (root / "opt/edge-gateway/systemd/install.sh").stat().st_mode & 0o111
    assert (root / "opt/edge-gateway/docs/installer-guide.md").exists()
    for u in ("edge-gateway.service", "edge-gateway-provision.service"):
        assert os.readlink(root / "etc/systemd/system/multi-user.target.wants" / u) == f"/etc/systemd/system/{u}"
    if shutil.which("systemctl"):
        r = subprocess.run(["systemctl", f"--root={root}", "is-enabled", "edge-gateway.service"],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "enabled", r.stdout + r.stderr

    # idempotent: a second run changes nothing and says so
    second = run_install(root, "--no-venv")
    assert "installed " not in second.stdout, second.stdout
    assert tree(root) == t
    assert len((root / "var/log/edge-gateway/install.log").read_text().splitlines()) == 2

    # the installed units are valid and hardened
    analyze_in_root(root)
    r = subprocess.run([ANALYZE, "verify", f"--root={root}", "edge-gateway.service",
                        "edge-gateway-provision.service"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr
    r = subprocess.run([ANALYZE, "security", "--offline=true", "--threshold=25", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for edge-gateway\.service: (\d+\.\d+)", r.stdout)
    assert r.returncode == 0 and m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.5, r.stdout

    # uninstall keeps configuration and data; purge removes them
    (root / "etc/edge-gateway/edge.yaml").write_text("gateway: {}\n")
    (root / "var/lib/edge-gateway").mkdir(parents=True)
    run_install(root, "--uninstall")
    assert not unit.exists() and not (root / "opt/edge-gateway").exists()
    assert not (root / "usr/local/bin/edge").is_symlink()
    assert not (root / "etc/systemd/system/multi-user.target.wants/edge-gateway.service").is_symlink()
    assert (root / "etc/edge-gateway/edge.yaml").exists() and (root / "var/lib/edge-gateway").is_dir()
    run_install(root, "--uninstall", "--purge")
    assert not (root / "etc/edge-gateway").exists() and not (root / "var/lib/edge-gateway").exists()


@needs_analyze
def test_security_threshold_catches_a_weak_unit(tmp_path):
    """The ≤ 2.5 check can fail: the same unit without its sandbox scores far worse."""
    keep = ("Type", "NotifyAccess", "ExecStart", "WatchdogSec", "Restart", "Description")
    weak = tmp_path / "edge-gateway.service"
    lines = [l for l in UNIT.read_text().splitlines()
             if not l or l.startswith(("[", "#")) or l.split("=", 1)[0] in keep]
    weak.write_text("\n".join(lines) + "\n")
    r = subprocess.run([ANALYZE, "security", "--offline=true", "--threshold=25", str(weak)],
                       capture_output=True, text=True, timeout=60)
    score = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout).group(1))
    assert score > 2.5 and r.returncode != 0


@needs_analyze
def test_verify_reports_a_broken_unit(tmp_path):
    root = tmp_path / "root"
    analyze_in_root(root)
    d = root / "etc/systemd/system"
    d.mkdir(parents=True)
    (d / "edge-gateway.service").write_text(UNIT.read_text().replace("Type=notify", "Type=notfy"))
    r = subprocess.run([ANALYZE, "verify", f"--root={root}", "edge-gateway.service"], capture_output=True,
                       text=True, timeout=60)
    assert "notfy" in r.stderr  # our check treats any output as a failure


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed (it comes with dpkg on every Debian system)")
def test_deb_package(tmp_path):
    r = subprocess.run(["bash", str(SYSTEMD / "build-deb.sh"), "--out", str(tmp_path), "--compress", "none"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    deb = Path(r.stdout.strip().splitlines()[-1])
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture", "Depends"], capture_output=True,
                          text=True, check=True).stdout
    assert "Package: edge-gateway" in info and "python3-venv" in info
    contents = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./opt/edge-gateway/systemd/install.sh", "./opt/edge-gateway/systemd/edge-gateway.service",
                 "./opt/edge-gateway/src/edge/deploy/watchdog.py", "./opt/edge-gateway/src/pyproject.toml"):
        assert path in contents
    assert "root/root" in contents and "__pycache__" not in contents
    x = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(x)], check=True)
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(x / "DEBIAN" / script, os.X_OK)
    assert "install.sh --package" in (x / "DEBIAN/postinst").read_text()
    # the packaged install.sh works from the package layout
    target = tmp_path / "target"
    r = subprocess.run(["bash", str(x / "opt/edge-gateway/systemd/install.sh"), "--root", str(target), "--no-venv",
                        "--package"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "etc/systemd/system/edge-gateway.service").read_bytes() == UNIT.read_bytes()
