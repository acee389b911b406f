"""Doctor checks of the uplink: TCP reachability, TLS handshake, MQTT 5 login and ACL (a QoS 1 test publish to
the gateway's own prefix; the broker's PUBACK reason code must be a success, < 0x80), certificate expiry.

Done in separate steps so the installer sees *where* it breaks: network, TLS trust, credentials, or ACL.
"""
from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from edge.config import Config

from .. import certs
from ..paths import Layout, resolve_credential
from .base import Check, fail, ok, skip


def doctor_topic(cfg: Config) -> str:
    g = cfg.gateway
    assert cfg.uplink is not None
    return f"{cfg.uplink.topic_prefix}/{g.county_code}/{g.compound_id}/{g.id}/doctor"


def _endpoint(cfg: Config) -> tuple[str, int, bool]:
    assert cfg.uplink is not None
    u = urlparse(cfg.uplink.broker)
    tls = u.scheme == "mqtts"
    return u.hostname or "", u.port or (8883 if tls else 1883), tls


def _ssl_context(cfg: Config, layout: Layout) -> ssl.SSLContext:
    assert cfg.uplink is not None
    t = cfg.uplink.tls
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(t.ca_file) if t and t.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if t and t.cert_file and t.key_file:
        ctx.load_cert_chain(str(t.cert_file), str(resolve_credential(t.key_file, layout)))
    return ctx


def _tls_fix(msg: str) -> str:
    m = msg.lower()
    if "expired" in m or "not yet valid" in m:
        return "check the clock (`timedatectl`); if it is right, the broker's certificate really is out of date"
    if "hostname" in m or "ip address mismatch" in m:
        return "use the broker name its certificate was issued for in uplink.broker, or set uplink.tls.server_name"
    if "unable to get local issuer" in m or "self-signed" in m or "self signed" in m or "verify failed" in m:
        return "uplink.tls.ca_file must be the CA that signed the broker certificate (ask the county for it)"
    if "wrong version" in m or "record layer" in m or "unexpected eof" in m:
        return "the port does not speak TLS: use mqtts:// with the TLS port (usually 8883) or mqtt:// for plain"
    if "unknown ca" in m or "certificate required" in m or "bad certificate" in m:
        return "the broker refused our client certificate: install the certificate issued by the county CA"
    return "check uplink.tls (ca_file, cert_file, key_file) and the broker address"


def check_broker(cfg: Config, layout: Layout, timeout_s: float) -> list[Check]:
    if cfg.uplink is None or not cfg.uplink.enabled:
        return [skip("broker", "broker reachable", "uplink not configured")]
    host, port, tls = _endpoint(cfg)
    where = f"{host}:{port}"
    out: list[Check] = []
    # 1. TCP
    t0 = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except socket.gaierror as exc:
        return [fail("broker.tcp", "broker reachable", f"cannot resolve {host}: {exc.strerror}",
                     "check DNS (`resolvectl status`, /etc/resolv.conf) or put the broker's IP in uplink.broker")]
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return [fail("broker.tcp", "broker reachable", f"cannot connect to {where}: {why}",
                     f"check uplink.broker, the network cable/route, and that the firewall allows TCP {port} out")]
    out.append(ok("broker.tcp", "broker reachable", f"TCP {where} in {1000 * (time.monotonic() - t0):.0f} ms"))
    # 2. TLS handshake
    if tls:
        try:
            ctx = _ssl_context(cfg, layout)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            return out + [fail("broker.tls", "TLS handshake", f"cannot load TLS files: {exc}",
                               "run `edge provision --check`; the CA, certificate and key files must exist and match")]
        server_name = (cfg.uplink.tls.server_name if cfg.uplink.tls else None) or host
        try:
            with ctx.wrap_socket(sock, server_hostname=server_name) as tsock:
                tsock.settimeout(timeout_s)
                peer = tsock.getpeercert() or {}
                version = tsock.version()
        except ssl.SSLCertVerificationError as exc:
            msg = exc.verify_message or str(exc)
            return out + [fail("broker.tls", "TLS handshake", f"broker certificate rejected: {msg}", _tls_fix(msg))]
        except (ssl.SSLError, OSError) as exc:
            msg = str(exc)
            return out + [fail("broker.tls", "TLS handshake", f"TLS failed: {msg}", _tls_fix(msg))]
        until = peer.get("notAfter", "?")
        out.append(ok("broker.tls", "TLS handshake", f"{version}, broker certificate for {server_name} trusted "
                                                     f"(valid until {until})", version=version))
    else:
        sock.close()
        out.append(skip("broker.tls", "TLS handshake", "plain MQTT (mqtt://): traffic is not encrypted"))
    # 3. MQTT 5 login + ACL
    out.append(_mqtt_check(cfg, layout, host, port, tls, timeout_s))
    return out


def _mqtt_check(cfg: Config, layout: Layout, host: str, port: int, tls: bool, timeout_s: float) -> Check:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    up = cfg.uplink
    assert up is not None
    title = "MQTT login and ACL"
    topic = doctor_topic(cfg)
    # A separate client id: reusing the gateway's would kick the running service off the broker.
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{cfg.gateway.id}-doctor",
                         protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    client.connect_timeout = timeout_s
    connected, published, gone = threading.Event(), threading.Event(), threading.Event()
    box: dict = {}

    def on_connect(c, userdata, flags, reason_code, properties):
        box["connack"] = reason_code
        connected.set()

    def on_publish(c, userdata, mid, reason_code, properties):
        box["puback"] = reason_code
        published.set()

    def on_disconnect(c, userdata, flags, reason_code, properties):
        box["disconnect"] = reason_code
        gone.set()
        connected.set()
        published.set()

    client.on_connect, client.on_publish, client.on_disconnect = on_connect, on_publish, on_disconnect
    if up.username:
        client.username_pw_set(up.username, up.password.resolve() if up.password else None)
    if tls:
        ctx = _ssl_context(cfg, layout)
        if up.tls and up.tls.server_name:
            ctx.check_hostname = False  # verified against server_name in the TLS step (paho uses the host name)
        client.tls_set_context(ctx)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    try:
        client.connect(host, port, keepalive=max(10, int(timeout_s * 2)), clean_start=True, properties=props)
    except (OSError, ssl.SSLError) as exc:
        return fail("broker.mqtt", title, f"connect failed: {exc}", _tls_fix(str(exc)) if tls else
                    "check uplink.broker and that the broker runs")
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or "connack" not in box:
            why = f"disconnected ({box['disconnect']})" if "disconnect" in box else f"no CONNACK in {timeout_s:g} s"
            fix = ("the broker closed the connection during login: with mutual TLS it probably refused our "
                   "certificate (install the one the county CA issued)" if tls else "check that it is an MQTT broker")
            return fail("broker.mqtt", title, why, fix)
        rc = box["connack"]
        if rc.is_failure:
            return fail("broker.mqtt", title, f"broker refused the login: {rc} (0x{rc.value:02x})",
                        "check uplink.username/password or that the county registered this gateway's id/certificate",
                        reason_code=rc.value)
        pprops = Properties(PacketTypes.PUBLISH)
        pprops.MessageExpiryInterval = 300
        payload = json.dumps({"doctor": True, "gateway": cfg.gateway.id,
                              "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")})
        info = client.publish(topic, payload, qos=1, properties=pprops)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return fail("broker.mqtt", title, f"publish not sent: {mqtt.error_string(info.rc)}",
                        "re-run the doctor; if it persists check the network")
        if not published.wait(timeout_s) or "puback" not in box:
            why = f"disconnected ({box.get('disconnect')})" if "disconnect" in box else f"no PUBACK in {timeout_s:g} s"
            return fail("broker.mqtt", title, f"test publish to {topic}: {why}",
                        f"the broker's ACL must allow this gateway to publish to {up.topic_prefix}/"
                        f"{cfg.gateway.county_code}/{cfg.gateway.compound_id}/{cfg.gateway.id}/#")
        rc = box["puback"]
        if rc.value >= 0x80:
            return fail("broker.mqtt", title, f"test publish to {topic} rejected: {rc} (0x{rc.value:02x})",
                        f"ask the county to allow publish on {up.topic_prefix}/{cfg.gateway.county_code}/"
                        f"{cfg.gateway.compound_id}/{cfg.gateway.id}/# for this gateway", reason_code=rc.value)
        return ok("broker.mqtt", title, f"MQTT 5 login ok; test message to {topic} accepted "
                                        f"(PUBACK 0x{rc.value:02x})", topic=topic, reason_code=rc.value)
    finally:
        client.disconnect()
        client.loop_stop()


def check_certificate(cfg: Config, layout: Layout) -> Check:
    title = "certificate expiry"
    t = cfg.uplink.tls if cfg.uplink else None
    if not t or not t.cert_file:
        return skip("certificate", title, "no client certificate configured")
    cert_path = Path(t.cert_file)
    if not cert_path.exists():
        return fail("certificate", title, f"{cert_path} missing",
                    f"send {layout.csr} to the county CA, then `edge provision --install-cert FILE`")
    key_path = resolve_credential(t.key_file, layout) if t.key_file else None
    try:
        key = certs.load_key(key_path) if key_path else None
    except OSError as exc:
        return fail("certificate", title, f"cannot read the private key {key_path}: {exc.strerror}",
                    "run the doctor with sudo; if the key is missing run `edge provision` (needs a new certificate)")
    except ValueError as exc:
        return fail("certificate", title, f"private key {key_path} unusable: {exc}",
                    "`edge provision --new-key`, then get the new CSR signed")
    ca = Path(t.ca_file).read_bytes() if t.ca_file and Path(t.ca_file).exists() else None
    rep = certs.check_certificate(cert_path.read_bytes(), key, ca_pem=ca, gateway_id=cfg.gateway.id)
    detail = {"not_after": rep.not_after.isoformat() if rep.not_after else None, "days_left":
              round(rep.days_left, 1) if rep.days_left is not None else None, "fingerprint": rep.fingerprint}
    if not rep.ok:
        return fail("certificate", title, "; ".join(rep.problems), "; ".join(rep.fixes), **detail)
    return ok("certificate", title, f"CN={rep.subject_cn}, valid until {rep.not_after:%Y-%m-%d} "
                                    f"({rep.days_left:.0f} days left)", **detail)


def certificate_not_before(cfg: Config) -> dt.datetime | None:
    """For the clock check: a clock before our own certificate's start date is certainly wrong."""
    t = cfg.uplink.tls if cfg.uplink else None
    try:
        if t and t.cert_file and Path(t.cert_file).exists():
            return certs.load_pem_certs(Path(t.cert_file).read_bytes())[0].not_valid_before_utc
    except (OSError, ValueError):
        pass
    return None
