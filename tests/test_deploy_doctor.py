"""`edge doctor` against a real Mosquitto (TLS with client certificates and an ACL), a real video file as camera,
real ptys and SQLite files: all ✓ on a good site, ✗ with the fix for each broken part."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.deploy.dev_ca import DevCA
from edge.deploy.doctor import render_text, run_doctor
from edge.deploy.paths import Layout
from edge.deploy.provision import provision
from edge.store import Store
from tests.helpers.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests/data/intel_person_bicycle_car.mp4"
GW = {"id": "gw-xh-0001", "compound_id": "xh-lvyuan", "county_code": "330106"}
TOPIC = "cgw/v1/330106/xh-lvyuan/gw-xh-0001/doctor"


@pytest.fixture
def county(tmp_path, mosquitto_factory, monkeypatch):
    """A provisioned gateway (key made here, CSR signed by the county CA) and the county's TLS broker that
    maps the certificate CN to the username and only lets a gateway publish under its own prefix."""
    ca = DevCA()
    (tmp_path / "county-ca.pem").write_bytes(ca.cert_pem)
    port = free_port()
    layout = Layout(tmp_path / "root")
    provision(layout, identity=GW, broker=f"mqtts://localhost:{port}", ca_file=tmp_path / "county-ca.pem")
    (tmp_path / "gw.crt").write_bytes(ca.sign_csr(layout.csr.read_bytes()))
    steps = provision(layout, install_cert=tmp_path / "gw.crt")
    assert not [s for s in steps if s.status != "ok"], steps
    mq = tmp_path / "mq"
    mq.mkdir()
    cert, key = ca.issue_server(["localhost", "127.0.0.1"])
    (mq / "server.crt").write_bytes(cert)
    (mq / "server.key").write_bytes(key)
    (mq / "acl").write_text("pattern write cgw/v1/+/+/%u/#\n")
    broker = mosquitto_factory(f"listener {port} 127.0.0.1\ncafile {tmp_path / 'county-ca.pem'}\n"
                               f"certfile {mq / 'server.crt'}\nkeyfile {mq / 'server.key'}\nrequire_certificate true\n"
                               f"use_identity_as_username true\nacl_file {mq / 'acl'}\n", port=port)
    # as the service sees it: relative secrets come from the credentials folder (LoadCredential=)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(layout.credentials))
    return layout, broker, mq


def add_sections(layout: Layout, text: str) -> None:
    with open(layout.config, "a", encoding="utf-8") as f:
        f.write(text)


def by_id(checks):
    return {c.id: c for c in checks}


def test_good_site_all_green(county):
    layout, broker, _ = county
    Store(layout.state / "edge.db").close()  # a gateway that has run before
    add_sections(layout, f"cameras:\n  - id: cam-lane-1\n    url: file://{CLIP}\n")
    checks = run_doctor(layout.config, layout, timeout_s=5)
    text = render_text(checks)
    assert not [c for c in checks if c.failed], text
    c = by_id(checks)
    assert c["broker.tls"].status == "ok" and "TLSv1." in c["broker.tls"].summary
    assert c["broker.mqtt"].status == "ok" and TOPIC in c["broker.mqtt"].summary
    assert c["certificate"].status == "ok" and "days left" in c["certificate"].summary
    assert c["database"].status == "ok" and ": ok" in c["database"].summary
    cam = c["camera:cam-lane-1"]
    assert cam.status == "ok" and cam.detail["width"] > 0 and cam.detail["height"] > 0 and cam.detail["fps"]
    assert "all checks passed" in text and "✗" not in text
    # the broker really got the QoS 1 test message from the doctor's own client id
    log = broker.log_path.read_text(errors="replace")
    assert "gw-xh-0001-doctor" in log and TOPIC in log


def test_broken_site_each_fault_with_its_fix(county, tmp_path):
    layout, broker, mq = county
    master, slave = os.openpty()
    pty_path = os.ttyname(slave)
    dead_port = free_port()
    add_sections(layout, f"""devices:
  - type: modbus_level
    id: bins-bus-a
    serial: {{port: {pty_path}}}
    sensors:
      - {{unit: 1, bin: a-kitchen, empty_mm: 1200, full_mm: 250}}
  - type: uart_level
    id: bin-b
    serial: {{port: /dev/ttyUSB9}}
    bin: b-other
    empty_mm: 1200
    full_mm: 250
cameras:
  - id: cam-lane-1
    url: rtsp://127.0.0.1:{dead_port}/Streaming/Channels/102
""")
    (mq / "acl").write_text("pattern write county/only/%u/#\n")  # the county forgot this gateway's prefix
    broker.restart()
    db = layout.state / "edge.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    Store(db).close()
    with open(db, "r+b") as f:  # damage a b-tree page, as a worn SD card does
        f.seek(4096 + 8)
        f.write(b"\xff" * 64)
    try:
        checks = run_doctor(layout.config, layout, timeout_s=2)
    finally:
        os.close(master)
        os.close(slave)
    c = by_id(checks)
    text = render_text(checks)

    cam = c["camera:cam-lane-1"]
    assert cam.status == "fail" and cam.fix, text
    try:
        import drivers.cameras.probe  # noqa: F401
        assert "driver not installed" not in cam.summary and str(dead_port) in cam.summary, cam
    except ModuleNotFoundError:
        assert "driver not installed" in cam.summary

    assert c["broker.mqtt"].status == "fail" and "0x87" in c["broker.mqtt"].summary
    assert "cgw/v1/330106/xh-lvyuan/gw-xh-0001/#" in c["broker.mqtt"].fix
    assert c["broker.tls"].status == "ok"  # the handshake is fine; only the ACL is wrong

    assert c["serial:/dev/ttyUSB9"].status == "fail" and "does not exist" in c["serial:/dev/ttyUSB9"].summary
    assert "by-id" in c["serial:/dev/ttyUSB9"].fix
    assert c[f"serial:{pty_path}"].status in ("ok", "fail")  # present; a pty is not in group dialout
    dead = c["device:bins-bus-a"]  # nobody answers on the pty
    assert dead.status == "fail" and dead.fix

    assert c["database"].status == "fail" and "damaged" in c["database"].summary and c["database"].fix
    for line in (l for l in text.splitlines() if l.startswith("✗")):
        nxt = text.splitlines()[text.splitlines().index(line) + 1]
        assert nxt.strip().startswith("fix:"), f"no fix after {line!r}"


def test_plain_mqtt_with_the_mosquitto_fixture(mosquitto, tmp_path, monkeypatch):
    layout = Layout(tmp_path / "root")
    provision(layout, identity=GW, broker=mosquitto.url)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(layout.credentials))
    checks = by_id(run_doctor(layout.config, layout, timeout_s=3))
    assert checks["broker.tcp"].status == "ok"
    assert checks["broker.tls"].status == "skip" and "not encrypted" in checks["broker.tls"].summary
    assert checks["broker.mqtt"].status == "ok", checks["broker.mqtt"]
    assert checks["certificate"].status == "skip"
    mosquitto.stop()
    down = by_id(run_doctor(layout.config, layout, timeout_s=2))["broker.tcp"]
    assert down.status == "fail" and "cannot connect" in down.summary and "firewall" in down.fix


def test_invalid_config_and_full_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    bad = tmp_path / "edge.yaml"
    bad.write_text("gateway:\n  id: gw-1\n  compound_id: cp\n  county_code: '330106'\n  colour: red\n")
    checks = run_doctor(bad, Layout(tmp_path))
    assert checks[0].status == "fail" and ":5:" in checks[0].summary and "colour" in checks[0].summary
    assert "check-config" in checks[0].fix
    assert [c.id for c in checks] == ["config", "clock"]  # nothing else can be checked without a config
    missing = run_doctor(tmp_path / "nope.yaml", Layout(tmp_path))[0]
    assert missing.status == "fail" and "edge provision" in missing.fix

    good = tmp_path / "big.yaml"
    good.write_text(f"gateway: {{id: gw-1, compound_id: cp, county_code: '330106'}}\n"
                    f"storage: {{path: {tmp_path / 'data'}, max_db_mb: 900000000}}\n")
    disk = by_id(run_doctor(good, Layout(tmp_path)))["disk"]
    assert disk.status == "fail" and "budgets do not fit" in disk.summary and "max_db_mb" in disk.fix


def test_cli_json_and_exit_code(county):
    layout, _, _ = county
    add_sections(layout, "cameras:\n  - id: cam-x\n    url: http://127.0.0.1:9/snapshot.jpg\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "edge.cli", "doctor", "--root", str(layout.root), "-c",
                        str(layout.config), "--json", "--timeout", "2"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    cam = next(c for c in doc["checks"] if c["id"] == "camera:cam-x")
    assert cam["status"] == "fail" and cam["fix"]
    assert next(c for c in doc["checks"] if c["id"] == "broker.mqtt")["status"] == "ok"


def test_secrets_must_reach_the_service(tmp_path, monkeypatch):
    layout = Layout(tmp_path / "root")
    provision(layout, identity=GW)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(layout.credentials))
    monkeypatch.delenv("CAM_2_PASSWORD", raising=False)
    add_sections(layout, "cameras:\n"
                         "  - {id: cam-1, url: 'rtsp://10.0.0.1/x', password: {file: cam-1-password}}\n"
                         "  - {id: cam-2, url: 'rtsp://10.0.0.2/x', password: {env: CAM_2_PASSWORD}}\n")
    from edge.config import load_config
    from edge.deploy.doctor.system import check_secrets

    cfg = load_config(layout.config)
    (layout.credentials / "cam-1-password").write_text("s3cret\n")
    bad = check_secrets(cfg, layout)
    assert bad.status == "fail" and "cam-1-password is not passed to the service" in bad.summary
    assert "CAM_2_PASSWORD is not set" in bad.summary and "edge provision" in bad.fix
    provision(layout)  # writes the LoadCredential= drop-in for the new file
    monkeypatch.setenv("CAM_2_PASSWORD", "x")
    good = check_secrets(cfg, layout)
    assert good.status == "ok" and good.detail["count"] == 2, good
