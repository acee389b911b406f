"""`edge provision` in a throwaway root: identity from the boot partition, key 0600 made here, CSR, certificate
checked against a real (throwaway) county CA before it is installed."""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.config import load_config
from edge.deploy import certs
from edge.deploy.dev_ca import DevCA
from edge.deploy.paths import Layout
from edge.deploy.provision import ProvisionError, provision


BOOT = """# written by the installer on a laptop
gateway:
  id: gw-xh-0001
  compound_id: xh-lvyuan
  county_code: 330106
  name: 绿园小区
uplink:
  broker: mqtts://iot.county.example:8883
"""


@pytest.fixture
def edge(capsys):
    """`edge ...` in-process (the CLI's start-up imports cost seconds per subprocess); returns rc, out, err."""
    from edge.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out, err)
    return run


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "root"
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "edge-gateway.yaml").write_text(BOOT, encoding="utf-8")
    ca = DevCA()
    (boot / "county-ca.pem").write_bytes(ca.cert_pem)
    return Layout(root), boot, ca


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_first_boot_from_boot_partition_cli(site, edge):
    layout, boot, ca = site
    r = edge("provision", "--root", str(layout.root), "--from-boot")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✓ private key" in r.stdout and "generated on this device" in r.stdout
    assert "next: send" in r.stdout  # no certificate yet: the installer is told what to do
    cfg = load_config(layout.config)
    assert (cfg.gateway.id, cfg.gateway.compound_id, cfg.gateway.county_code) == ("gw-xh-0001", "xh-lvyuan", "330106")
    assert cfg.uplink.broker == "mqtts://iot.county.example:8883"
    assert cfg.uplink.tls.key_file == Path("gateway.key")  # relative: read from $CREDENTIALS_DIRECTORY
    assert mode(layout.key) == 0o600 and mode(layout.credentials) == 0o700
    assert mode(layout.config) == 0o644 and layout.ca.read_bytes() == ca.cert_pem
    csr = x509.load_pem_x509_csr(layout.csr.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-xh-0001"
    key = certs.load_key(layout.key)
    assert certs.csr_matches(csr, key, certs.subject_for("gw-xh-0001", "xh-lvyuan", "330106"))
    assert (boot / "edge-gateway.csr").read_bytes() == layout.csr.read_bytes()  # for the installer to take away
    assert b"PRIVATE KEY" not in (boot / "edge-gateway.csr").read_bytes()

    # second boot, certificate from the county put on the boot partition: checked, installed, key unchanged
    key_before = layout.key.read_bytes()
    (boot / "edge-gateway.crt").write_bytes(ca.sign_csr((boot / "edge-gateway.csr").read_bytes()))
    r = edge("provision", "--root", str(layout.root), "--from-boot", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    steps = json.loads(r.stdout)["steps"]
    assert any(s["title"].startswith("certificate") and "installed" in s["detail"] for s in steps), steps
    assert layout.key.read_bytes() == key_before
    assert layout.cert.read_bytes() == (boot / "edge-gateway.crt").read_bytes() and mode(layout.cert) == 0o644

    # third run: nothing changes (idempotent)
    snapshot = {p: p.read_bytes() for p in layout.etc.rglob("*") if p.is_file()}
    r = edge("provision", "--root", str(layout.root), "--from-boot")
    assert r.returncode == 0 and "unchanged" in r.stdout
    assert {p: p.read_bytes() for p in layout.etc.rglob("*") if p.is_file()} == snapshot


def test_bad_certificates_are_refused(site, tmp_path, edge):
    layout, boot, ca = site
    provision(layout, boot_file=boot / "edge-gateway.yaml")
    csr = layout.csr.read_bytes()

    other_ca = DevCA("Somebody else's CA")
    wrong_issuer = tmp_path / "wrong-issuer.crt"
    wrong_issuer.write_bytes(other_ca.sign_csr(csr))
    expired = tmp_path / "expired.crt"
    expired.write_bytes(ca.sign_csr(csr, days=30, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60)))
    stranger = Layout(tmp_path / "other-box")
    provision(stranger, identity={"id": "gw-xh-0001", "compound_id": "xh-lvyuan", "county_code": "330106"})
    other_key = tmp_path / "other-key.crt"
    other_key.write_bytes(ca.sign_csr(stranger.csr.read_bytes()))
    not_pem = tmp_path / "garbage.crt"
    not_pem.write_text("hello")

    cases = {wrong_issuer: "not issued by the county CA", expired: "expired",
             other_key: "does not belong to this gateway's private key", not_pem: "not a PEM certificate"}
    for path, why in cases.items():
        steps = provision(layout, install_cert=path)
        bad = [s for s in steps if s.status == "fail"]
        assert bad and why in bad[0].detail and bad[0].fix, (path.name, steps)
        assert not layout.cert.exists()
    r = edge("provision", "--root", str(layout.root), "--install-cert", str(expired))
    assert r.returncode == 1 and "✗ certificate" in r.stdout and "fix:" in r.stdout

    soon = tmp_path / "soon.crt"
    soon.write_bytes(ca.sign_csr(csr, days=10))
    steps = provision(layout, install_cert=soon)
    assert any(s.status == "fail" and "expires in" in s.detail for s in steps)


def test_update_keeps_comments_and_other_sections(tmp_path):
    layout = Layout(tmp_path)
    layout.etc.mkdir(parents=True)
    layout.config.write_text(
        "# our compound\ngateway:\n  id: old-id  # from the sticker\n  compound_id: cp\n  county_code: '330106'\n"
        f"storage:\n  path: {tmp_path / 'data'}\nweb:\n  enabled: false  # no console here\n")
    provision(layout, identity={"id": "gw-new"})
    text = layout.config.read_text()
    assert "# our compound" in text and "# no console here" in text and "gw-new" in text
    assert load_config(layout.config).gateway.id == "gw-new"
    csr = x509.load_pem_x509_csr(layout.csr.read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-new"


def test_missing_ids_and_bad_boot_file_explain_the_fix(tmp_path, edge):
    layout = Layout(tmp_path)
    with pytest.raises(ProvisionError, match="--gateway-id"):
        provision(layout, identity={"id": "gw-1"})
    assert not layout.config.exists() and not layout.key.exists()  # nothing half-written
    bad = tmp_path / "edge-gateway.yaml"
    bad.write_text("gateway:\n  id: gw-1\n  compund_id: typo\n")
    with pytest.raises(ProvisionError, match="compund_id"):
        provision(layout, boot_file=bad)
    r = edge("provision", "--root", str(tmp_path), "--from-boot")
    assert r.returncode == 2 and "no boot-partition file" in r.stderr


def test_key_permissions_repaired_and_extra_credentials_passed(site):
    layout, boot, _ = site
    provision(layout, boot_file=boot / "edge-gateway.yaml")
    os.chmod(layout.key, 0o644)
    (layout.credentials / "osdp-scbk").write_text("00112233445566778899aabbccddeeff\n")
    steps = provision(layout, boot_file=boot / "edge-gateway.yaml")
    assert mode(layout.key) == 0o600 and any("permissions fixed" in s.detail for s in steps)
    dropin = layout.credentials_dropin.read_text()
    assert "LoadCredential=osdp-scbk:/etc/edge-gateway/credentials/osdp-scbk" in dropin
    assert "gateway.key" not in dropin.split("[Service]")[1]  # that one is in the unit itself
