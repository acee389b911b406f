"""Fault test 7: mutual TLS against Mosquitto with require_certificate, use_identity_as_username and a
`pattern ... %u` ACL. A gateway publishes only under its own prefix; another gateway's client id, no
certificate, or an expired certificate is refused with a clear log line. Certificates are made here."""
from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.bridge_harness import Runtime, make_config, start_county, stop_county, wait_until
from tests.helpers.broker import free_port

NOW = dt.datetime.now(dt.timezone.utc)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, key, cert) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return path.with_suffix(".crt"), path.with_suffix(".key")


def _cert(cn: str, ca_key, ca_name, *, server: bool = False, days=(-1, 30), is_ca: bool = False, key=None):
    key = key or _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return key, b.sign(ca_key or key, hashes.SHA256())


def make_pki(d: Path) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _cert("test county CA", None, None, is_ca=True, days=(-1, 365))
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {"ca": d / "ca.crt"}
    for cn, kw in {"server": {"server": True}, "gw-a": {}, "gw-b": {}, "county": {},
                   "gw-old": {"days": (-30, -1)}}.items():
        k, c = _cert(cn if cn != "server" else "localhost", ca_key, ca.subject, **kw)
        out[cn] = _write(d / cn, k, c)
    return out


def broker_conf(port: int, pki: dict, d: Path) -> str:
    acl = d / "acl"
    acl.write_text("user county\ntopic read cgw/v1/#\ntopic read $share/county/cgw/v1/#\n"
                   "topic write cgw/v1/+/+/+/cmd/#\n\n"
                   "pattern write cgw/v1/+/+/%u/#\npattern read cgw/v1/+/+/%u/cmd/#\n")
    return (f"listener {port} 127.0.0.1\ncafile {pki['ca']}\ncertfile {pki['server'][0]}\n"
            f"keyfile {pki['server'][1]}\nrequire_certificate true\nuse_identity_as_username true\n"
            f"allow_anonymous false\nacl_file {acl}\n")


def _tls(pki, who: str | None, key_name: str | None = None) -> dict:
    t = {"ca_file": str(pki["ca"])}
    if who:
        t["cert_file"] = str(pki[who][0])
        t["key_file"] = key_name or str(pki[who][1])
    return t


async def _run(tmp_path, url, gw_id, tls, until, what, timeout=8.0):
    rt = await Runtime(make_config(tmp_path / gw_id / str(len(list(tmp_path.iterdir()))), url, gateway_id=gw_id,
                                   uplink={"tls": tls, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5})).start()
    try:
        rt.emit(5, kind="door.opened", source="door-1", payload={"controller": "c1", "door": 1})
        await wait_until(lambda: until(rt.uplink), timeout, what)
        return rt.uplink
    finally:
        await rt.stop()


async def test_mutual_tls_acl_per_gateway_and_clear_refusals(mosquitto_factory, tmp_path, monkeypatch, caplog):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    broker = mosquitto_factory(broker_conf(port, pki, tmp_path), port=port)
    url = f"mqtts://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.load_cert_chain(*map(str, pki["county"]))
    county, ctask = await start_county(url, tmp_path / "county.db", tls=ctx)
    caplog.set_level(logging.INFO, logger="cloud_bridge")
    try:
        # (a) the right certificate; the key is a relative path found in $CREDENTIALS_DIRECTORY (systemd)
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(pki["gw-a"][1].parent))
        up = await _run(tmp_path, url, "gw-a", _tls(pki, "gw-a", key_name="gw-a.key"),
                        lambda u: u.c["acked"] >= 5, "gw-a delivers")
        assert up.c["connects"] >= 1 and not up.rejected
        await wait_until(lambda: county.report()["per_gateway"].get("gw-a", {}).get("unique") == 5, 5, "county")

        # (b) gw-a's certificate presenting gw-b's client id: the broker refuses (its will and topics are not
        # under gw-a's prefix); nothing reaches the county under gw-b
        caplog.clear()
        up = await _run(tmp_path, url, "gw-b", _tls(pki, "gw-a"),
                        lambda u: sum(u.rejected.values()) >= 1, "gw-b refused")
        assert up.c["acked"] == 0
        text = caplog.text
        assert "certificate CN differs from the gateway id" in text
        # mosquitto answers the birth status with 0x87 and then drops the link; the events stay queued
        assert "broker refused a message: Not authorized (0x87)" in text
        assert "gw-b" not in county.report()["per_gateway"]

        # (c) no client certificate at all
        caplog.clear()
        up = await _run(tmp_path, url, "gw-a", _tls(pki, None), lambda u: u.c["connect_failures"] >= 1,
                        "no-cert refused")
        assert up.c["connects"] == 0 and up.c["acked"] == 0
        err = up.last_connect_error.lower()
        assert "certificate" in err or "tls" in err or "ssl" in err, up.last_connect_error
        assert "uplink cannot connect" in caplog.text

        # (d) an expired certificate: explained before the handshake, refused by the broker
        caplog.clear()
        up = await _run(tmp_path, url, "gw-old", _tls(pki, "gw-old"), lambda u: u.c["connect_failures"] >= 1,
                        "expired refused")
        assert up.c["connects"] == 0
        assert "client certificate has expired" in caplog.text
        assert "expired" in up.last_connect_error.lower() or "certificate" in up.last_connect_error.lower()
        await asyncio.sleep(0.2)
        rep = county.report()
        assert rep["schema_errors"] == 0, rep["schema_error_samples"]
        assert set(rep["per_gateway"]) == {"gw-a"}
    finally:
        await stop_county(county, ctask)
        broker.stop()
