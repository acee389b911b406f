"""`edge provision`: give a freshly flashed gateway its identity.

1. ids from flags or from the boot-partition file (/boot/firmware/edge-gateway.yaml: a `gateway:` section and
   optionally an `uplink:` section, written with any laptop before the first boot);
2. edge.yaml created or its `gateway:` section updated in place (comments kept);
3. private key generated here (P-256, mode 0600, in the credentials folder; it never leaves the box);
4. CSR for the county CA written to /etc/edge-gateway/gateway.csr (and beside the boot file);
5. the certificate the CA returns is checked (our key, our id, the county CA, dates, clientAuth) and installed;
6. extra secrets in the credentials folder are handed to the service by a LoadCredential= drop-in.

Idempotent: running it again changes nothing unless the inputs changed.
"""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from edge.config import ConfigError, load_config_text

from . import certs
from .paths import Layout

IDENTITY_KEYS = ("id", "compound_id", "county_code", "name", "timezone")


class ProvisionError(Exception):
    """A problem the installer must fix; the message says how."""


@dataclasses.dataclass
class Step:
    status: str  # "ok" | "fail" | "todo"
    title: str
    detail: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 120
    y.allow_unicode = True
    return y


def read_boot_file(path: Path) -> dict[str, Any]:
    """The boot-partition file: `gateway:` (required) and `uplink:` (optional), nothing else."""
    try:
        data = _yaml().load(path.read_text(encoding="utf-8-sig"))  # Windows editors add a BOM
    except OSError as exc:
        raise ProvisionError(f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:
        raise ProvisionError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("gateway"), dict):
        raise ProvisionError(f"{path} needs a 'gateway:' section with id, compound_id and county_code")
    unknown = set(data) - {"gateway", "uplink"}
    if unknown:
        raise ProvisionError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: gateway, uplink")
    bad = set(data["gateway"]) - set(IDENTITY_KEYS)
    if bad:
        raise ProvisionError(f"{path}: unknown key(s) {sorted(bad)} under gateway; allowed: {', '.join(IDENTITY_KEYS)}")
    return {"gateway": dict(data["gateway"]), "uplink": data.get("uplink")}


def find_boot_file(layout: Layout) -> Path | None:
    return next((p for p in layout.boot_files() if p.is_file()), None)


def _new_config(layout: Layout) -> CommentedMap:
    text = (f"# edge.yaml written by `edge provision`; see /opt/edge-gateway/docs/installer-guide.md\n"
            f"gateway: {{}}\nstorage:\n  path: {layout.state}\n")
    return _yaml().load(text)


def _tls_defaults(layout: Layout) -> dict[str, str]:
    return {"ca_file": str(layout.ca), "cert_file": str(layout.cert), "key_file": layout.key.name}


def update_config(layout: Layout, identity: dict[str, Any], uplink: dict[str, Any] | None) -> tuple[Step, Any]:
    """Create edge.yaml or update its gateway (and missing uplink) section; validate before writing."""
    path = layout.config
    existed = path.exists()
    original = path.read_text(encoding="utf-8") if existed else ""
    doc = _yaml().load(original) if existed else _new_config(layout)
    if not isinstance(doc, dict):
        raise ProvisionError(f"{path} is not a YAML mapping; fix or move it away and re-run `edge provision`")
    gw = doc.get("gateway")
    if not isinstance(gw, dict):
        gw = doc["gateway"] = CommentedMap()
    for k in IDENTITY_KEYS:
        if identity.get(k) not in (None, ""):
            gw[k] = str(identity[k])
    if uplink:
        current = doc.get("uplink")
        if not isinstance(current, dict):
            doc["uplink"] = current = CommentedMap()
        for k, v in uplink.items():
            if k not in current or k == "broker":
                current[k] = v
    up = doc.get("uplink")
    if isinstance(up, dict) and str(up.get("broker", "")).startswith("mqtts://") and "tls" not in up:
        up["tls"] = CommentedMap(_tls_defaults(layout))
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    text = buf.getvalue()
    try:
        cfg = load_config_text(text, str(path))
    except ConfigError as exc:
        missing = [p for p in exc.problems if p.path.startswith("gateway")]
        hint = ("give the missing ids with --gateway-id/--compound-id/--county-code or in the boot file"
                if missing else f"fix {path} (see `edge check-config {path}`)")
        raise ProvisionError("the configuration would not be valid:\n  " +
                             "\n  ".join(str(p) for p in exc.problems) + f"\n  fix: {hint}") from None
    if text == original:
        return Step("ok", f"configuration {path}", "unchanged"), cfg
    path.parent.mkdir(parents=True, exist_ok=True)
    certs.write_private(path, text.encode(), mode=0o644)  # the service user must read it; no secrets inside
    return Step("ok", f"configuration {path}", "updated" if existed else "created"), cfg


def ensure_key(layout: Layout, new_key: bool) -> tuple[Step, Any]:
    layout.credentials.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.credentials, 0o700)
    if layout.key.exists() and not new_key:
        try:
            key = certs.load_key(layout.key)
        except (ValueError, TypeError) as exc:
            raise ProvisionError(f"{layout.key} is not a usable private key ({exc}); "
                                 f"create a new one with `edge provision --new-key` (needs a new certificate)")
        mode = layout.key.stat().st_mode & 0o777
        if mode != 0o600:
            os.chmod(layout.key, 0o600)
            return Step("ok", f"private key {layout.key}", f"kept; permissions fixed {mode:o} → 600"), key
        return Step("ok", f"private key {layout.key}", "kept (mode 600)"), key
    key = certs.generate_key()
    certs.write_private(layout.key, certs.key_pem(key), mode=0o600)
    return Step("ok", f"private key {layout.key}", "generated on this device (EC P-256, mode 600)"), key


def ensure_csr(layout: Layout, key, cfg, new_csr: bool, copy_to: Path | None) -> Step:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    g = cfg.gateway
    subject = certs.subject_for(g.id, g.compound_id, g.county_code)
    current = None
    if layout.csr.exists() and not new_csr:
        try:
            current = x509.load_pem_x509_csr(layout.csr.read_bytes())
        except ValueError:
            current = None
    if current is not None and certs.csr_matches(current, key, subject):
        detail = "kept"
        pem = layout.csr.read_bytes()
    else:
        pem = certs.make_csr(key, g.id, g.compound_id, g.county_code).public_bytes(serialization.Encoding.PEM)
        certs.write_private(layout.csr, pem, mode=0o644)
        detail = "written"
    if copy_to is not None:
        try:
            if not copy_to.exists() or copy_to.read_bytes() != pem:
                copy_to.write_bytes(pem)
            detail += f"; copy on the boot partition: {copy_to}"
        except OSError as exc:
            detail += f"; could not copy to {copy_to}: {exc.strerror}"
    return Step("ok", f"certificate request {layout.csr}", f"{detail} (CN={g.id})")


def install_ca(layout: Layout, source: Path) -> Step:
    data = source.read_bytes()
    try:
        cas = certs.load_pem_certs(data)
    except ValueError as exc:
        raise ProvisionError(f"{source}: {exc}") from None
    if layout.ca.exists() and layout.ca.read_bytes() == data:
        return Step("ok", f"county CA {layout.ca}", "unchanged")
    certs.write_private(layout.ca, data, mode=0o644)
    return Step("ok", f"county CA {layout.ca}", f"installed from {source} ({cas[0].subject.rfc4514_string()})")


def install_certificate(layout: Layout, key, cfg, source: Path) -> Step:
    data = source.read_bytes()
    ca = layout.ca.read_bytes() if layout.ca.exists() else None
    rep = certs.check_certificate(data, key, ca_pem=ca, gateway_id=cfg.gateway.id)
    if not rep.ok:
        return Step("fail", f"certificate {source} NOT installed", "; ".join(rep.problems), "; ".join(rep.fixes))
    if layout.cert.exists() and layout.cert.read_bytes() == data:
        return Step("ok", f"certificate {layout.cert}", f"unchanged, valid until {rep.not_after:%Y-%m-%d}")
    certs.write_private(layout.cert, data, mode=0o644)
    note = "" if ca else " (no county CA file to check the issuer against)"
    return Step("ok", f"certificate {layout.cert}",
                f"installed: CN={rep.subject_cn}, valid until {rep.not_after:%Y-%m-%d}, sha256 {rep.fingerprint}{note}")


def check_installed(layout: Layout, key, cfg) -> Step:
    if not layout.cert.exists():
        return Step("todo", "certificate", "not installed yet",
                    f"send {layout.csr} to the county CA, then: edge provision --install-cert FILE")
    ca = layout.ca.read_bytes() if layout.ca.exists() else None
    rep = certs.check_certificate(layout.cert.read_bytes(), key, ca_pem=ca, gateway_id=cfg.gateway.id)
    if rep.ok:
        return Step("ok", f"certificate {layout.cert}", f"matches the key, CN={rep.subject_cn}, "
                                                        f"{rep.days_left:.0f} days left")
    return Step("fail", f"certificate {layout.cert}", "; ".join(rep.problems), "; ".join(rep.fixes))


def credentials_dropin_text(layout: Layout) -> str:
    """LoadCredential= for every extra secret file (gateway.key is in the unit itself)."""
    names = sorted(p.name for p in layout.credentials.iterdir()
                   if p.is_file() and p.name != layout.key.name and not p.name.startswith("."))
    lines = ["# Written by `edge provision`: one credential per file in /etc/edge-gateway/credentials/.",
             "# Add a secret file there and re-run `edge provision`, then `systemctl restart edge-gateway`.",
             "[Service]"]
    real = Layout().credentials  # the unit always sees the real path, even when provisioning into a test root
    lines += [f"LoadCredential={n}:{real / n}" for n in names]
    return "\n".join(lines) + "\n"


def write_credentials_dropin(layout: Layout) -> Step:
    text = credentials_dropin_text(layout)
    path = layout.credentials_dropin
    if path.exists() and path.read_text() == text:
        return Step("ok", "service credentials", "unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    certs.write_private(path, text.encode(), mode=0o644)
    n = text.count("LoadCredential=")
    detail = f"{n} extra secret(s) passed to the service ({path})"
    if layout.root == Path("/") and Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        r = subprocess.run(["systemctl", "daemon-reload"], capture_output=True, text=True)
        if r.returncode != 0:
            return Step("fail", "service credentials", detail, f"run `systemctl daemon-reload` ({r.stderr.strip()})")
        detail += "; systemd reloaded"
    return Step("ok", "service credentials", detail)


def provision(layout: Layout, *, identity: dict[str, Any] | None = None, boot_file: Path | None = None,
              broker: str | None = None, ca_file: Path | None = None, install_cert: Path | None = None,
              new_key: bool = False, new_csr: bool = False) -> list[Step]:
    steps: list[Step] = []
    ident: dict[str, Any] = {}
    uplink: dict[str, Any] | None = None
    boot_dir = None
    if boot_file is not None:
        data = read_boot_file(boot_file)
        ident.update(data["gateway"])
        uplink = dict(data["uplink"]) if data["uplink"] else None
        boot_dir = boot_file.parent
        steps.append(Step("ok", f"identity from {boot_file}", ", ".join(f"{k}={v}" for k, v in ident.items())))
    ident.update({k: v for k, v in (identity or {}).items() if v not in (None, "")})
    if broker:
        uplink = {**(uplink or {}), "broker": broker}
    ca_source = ca_file or (boot_dir / "county-ca.pem" if boot_dir and (boot_dir / "county-ca.pem").is_file()
                            else None)
    if ca_source is not None:
        steps.append(install_ca(layout, ca_source))
    step, cfg = update_config(layout, ident, uplink)
    steps.append(step)
    step, key = ensure_key(layout, new_key)
    steps.append(step)
    steps.append(ensure_csr(layout, key, cfg, new_csr or new_key,
                            copy_to=boot_dir / "edge-gateway.csr" if boot_dir else None))
    cert_source = install_cert or (boot_dir / "edge-gateway.crt" if boot_dir and
                                   (boot_dir / "edge-gateway.crt").is_file() else None)
    if cert_source is not None:
        steps.append(install_certificate(layout, key, cfg, cert_source))
    steps.append(check_installed(layout, key, cfg))
    steps.append(write_credentials_dropin(layout))
    return steps
