"""One MQTT 5 connection, paho-mqtt 2 driven from the asyncio loop (no paho thread).

Why not `loop_start()`: with paho's own thread every callback would have to hop threads and share state with
the uplink under locks. Here paho's sockets are watched with `add_reader`/`add_writer` (paho's documented
external-loop hooks), so every callback runs in the event loop, in order, without locks.
Only the blocking part of connecting (DNS, TCP connect, TLS handshake) runs in a worker thread.

Half-open links: paho only notices a dead link after ~2x keepalive (it waits a full keepalive for the
PINGRESP after a full keepalive of silence). `liveness` here sends a PINGREQ after keepalive/2 of silence from
the broker and drops the link after one keepalive of silence, so a dead link is found within 1x keepalive
(plus one tick) whatever the traffic pattern.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("cloud_bridge.mqtt")

TICK_S = 0.25


class ConnectFailed(Exception):
    """The broker could not be reached or refused us; the message says why in words an installer can act on."""


@dataclass
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True
    content_type: str = "application/json"


@dataclass
class ConnAck:
    receive_maximum: int = 65535
    maximum_packet_size: int | None = None
    assigned_client_id: str | None = None
    server_keepalive: int | None = None
    topic_alias_maximum: int = 0
    raw: dict = field(default_factory=dict)


def reason_int(rc: Any) -> int:
    """paho hands ReasonCode objects (MQTT 5) or ints; both become the wire value."""
    if isinstance(rc, ReasonCode):
        return int(rc.value)
    try:
        return int(rc)
    except (TypeError, ValueError):
        return 0x80


def reason_name(rc: Any) -> str:
    if isinstance(rc, ReasonCode):
        return rc.getName()
    return str(rc)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str16(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


class FastProperties(Properties):
    """PUBLISH properties packed once, up front.

    paho's generic Properties object costs ~0.3 ms per message to build and pack (attribute validation on
    every set); at thousands of events per second that was a third of the uplink's CPU. paho only ever calls
    `pack()` on outgoing properties, so this subclass stores the encoded bytes (MQTT 5 section 2.2.2)."""

    def __init__(self, packed: bytes, desc: str):  # noqa: D107 - deliberately skips Properties.__init__
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)  # Properties.__setattr__ validates names
        object.__setattr__(self, "_packed", packed)
        object.__setattr__(self, "_desc", desc)

    def pack(self) -> bytes:  # type: ignore[override]
        return self._packed

    def __str__(self) -> str:
        return self._desc

    __repr__ = __str__


def publish_properties(*, content_type: str | None = None, user: list[tuple[str, str]] | None = None,
                       expiry_s: int | None = None, response_topic: str | None = None,
                       correlation: bytes | None = None, utf8: bool = True) -> Properties:
    body = bytearray()
    if content_type and utf8 and content_type.startswith(("application/json", "text/")):
        body += b"\x01\x01"  # payload format indicator: UTF-8
    if expiry_s:
        body += b"\x02" + struct.pack("!I", int(expiry_s))
    if content_type:
        body += b"\x03" + _str16(content_type.encode())
    if response_topic:
        body += b"\x08" + _str16(response_topic.encode())
    if correlation is not None:
        body += b"\x09" + _str16(bytes(correlation))
    for k, v in user or ():
        body += b"\x26" + _str16(k.encode()) + _str16(v.encode())
    return FastProperties(_varint(len(body)) + bytes(body),
                          f"Properties(content_type={content_type}, user={user}, expiry={expiry_s})")


class _PahoLog:
    """paho's logger hook (`enable_logger`): keeps the last error text for our own log lines, and never
    formats debug messages (paho's on_log callback would format every packet)."""

    def __init__(self, owner: "MqttConnection"):
        self.owner = owner

    def log(self, level: int, fmt: str, *args) -> None:
        if level >= logging.ERROR:
            try:
                self.owner.last_error = fmt % args
            except (TypeError, ValueError):
                self.owner.last_error = str(fmt)
        elif level == logging.WARNING:
            log.debug("paho: " + fmt, *args)


def user_properties(props: Properties | None) -> dict[str, str]:
    pairs = getattr(props, "UserProperty", None) or []
    return {k: v for k, v in pairs}


class MqttConnection:
    """A single connection attempt and its lifetime; make a new one to reconnect (fresh paho state each time:
    what was in flight is re-fed from the store, never from paho's memory)."""

    def __init__(self, *, client_id: str, host: str, port: int, keepalive: int, tls: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None, will: Will | None = None,
                 clean_start: bool = True, session_expiry_s: int = 0, manual_ack: bool = False,
                 max_inflight: int = 100, receive_maximum: int | None = None, connect_timeout_s: float = 10.0,
                 on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
                 on_publish: Callable[[int, int, str], None] | None = None, liveness: bool = True):
        self.host, self.port, self.keepalive = host, port, int(keepalive)
        self.connect_timeout_s = connect_timeout_s
        self.clean_start = clean_start
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.liveness = liveness
        self._on_message = on_message
        self._on_publish = on_publish
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                        manual_ack=manual_ack, reconnect_on_failure=False)
        # paho's own queue is never used as a buffer: the caller keeps at most max_inflight messages in flight,
        # and a queue limit equal to that makes any accounting bug show up as MQTT_ERR_QUEUE_SIZE (counted).
        # paho's own in-flight limit is off (0): it would re-scan all queued messages on every PUBACK (O(n^2));
        # the caller enforces the window, and the queue limit stays as the tripwire.
        c.max_inflight_messages_set(0)
        c.max_queued_messages_set(max_inflight)
        c._connect_timeout = connect_timeout_s  # paho has no public setter before connect(); used for TCP + TLS
        if tls is not None:
            c.tls_set_context(tls)
        if username is not None:
            c.username_pw_set(username, password)
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain,
                       properties=publish_properties(content_type=will.content_type))
        c.on_connect = self._cb_connect
        c.on_disconnect = self._cb_disconnect
        c.on_publish = self._cb_publish
        c.on_message = self._cb_message
        c.on_subscribe = self._cb_subscribe
        c.enable_logger(_PahoLog(self))  # type: ignore[arg-type]
        self.client = c
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connack: ConnAck | None = None
        self._connack_fut: asyncio.Future | None = None
        self.closed: asyncio.Future | None = None
        self._sock = None
        self._tasks: list[asyncio.Task] = []
        self.last_rx = time.monotonic()
        self.last_error: str | None = None
        self._pending_subs: dict[int, asyncio.Future] = {}
        self.connected_at: float | None = None
        self._writer_on = False

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def connect(self) -> ConnAck:
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        self._connack_fut = self.loop.create_future()
        props = Properties(PacketTypes.CONNECT)
        if self.session_expiry_s:
            props.SessionExpiryInterval = int(self.session_expiry_s)
        if self.receive_maximum:
            props.ReceiveMaximum = int(self.receive_maximum)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel racing its timeout
            async with asyncio.timeout(self.connect_timeout_s + 2):
                await self.loop.run_in_executor(
                    None, lambda: self.client.connect(self.host, self.port, self.keepalive,
                                                      clean_start=self.clean_start, properties=props))
        except ssl.SSLCertVerificationError as exc:
            raise ConnectFailed(f"TLS: the broker's certificate was not accepted ({exc.verify_message}); "
                                f"check tls.ca_file / tls.server_name") from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake with {self.host}:{self.port} failed: {exc.reason or exc}") from None
        except (ConnectionRefusedError, ConnectionResetError) as exc:
            raise ConnectFailed(f"{self.host}:{self.port}: {exc.strerror or exc}") from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectFailed(f"cannot reach {self.host}:{self.port}: {exc or type(exc).__name__}") from None
        self._attach()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await asyncio.shield(self._connack_fut)
        except TimeoutError:
            self.abort("no CONNACK")
            raise ConnectFailed(f"{self.host}:{self.port} accepted TCP but sent no CONNACK within "
                                f"{self.connect_timeout_s:g}s") from None
        except ConnectFailed:
            self.abort("refused")
            raise
        self.connected_at = time.monotonic()
        return self._connack_fut.result()

    def _attach(self) -> None:
        c = self.client
        sock = c.socket()
        if sock is None:
            why = self.last_error or "no reason given"
            hint = " (with TLS 1.3 a refused client certificate shows up here: missing, expired, or not signed " \
                   "by the broker's CA)" if c._ssl else ""
            raise ConnectFailed(f"the broker closed the connection during connect: {why}{hint}")
        self._sock = sock
        try:
            # paho leaves Nagle on: small PUBACK/PUBLISH writes then wait for the peer's delayed ACK (~40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        c.on_socket_close = self._cb_sock_close
        c.on_socket_register_write = self._cb_reg_write
        c.on_socket_unregister_write = self._cb_unreg_write
        self.loop.add_reader(sock, self._readable)
        if c.want_write():
            self._cb_reg_write(c, None, sock)
        self.last_rx = time.monotonic()
        self._tasks.append(asyncio.create_task(self._tick(), name="mqtt-tick"))

    def _readable(self) -> None:
        self.last_rx = time.monotonic()
        c = self.client
        # paho's loop_read handles at most len(out_messages)+len(in_messages) packets per call (one, for a pure
        # subscriber), so keep reading while the socket (or TLS buffer) still holds bytes
        for _ in range(1024):
            rc = c.loop_read(1000)
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None:
                break
            if not self._more_to_read(sock):
                break

    @staticmethod
    def _more_to_read(sock) -> bool:
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        try:
            return bool(sock.recv(1, socket.MSG_PEEK)) if pending is None else False
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True  # let paho read and report the error

    async def _tick(self) -> None:
        pinged_at = 0.0
        while self._sock is not None:
            await asyncio.sleep(TICK_S)
            if self._sock is None:
                break
            self.client.loop_misc()
            if not self.liveness or self.connack is None or self._sock is None:
                continue
            silent = time.monotonic() - self.last_rx
            if silent >= self.keepalive:
                self.abort(f"no data from the broker for {silent:.1f}s (keepalive {self.keepalive}s): "
                           f"link is dead or half-open")
                return
            if silent >= self.keepalive / 2 and time.monotonic() - pinged_at >= self.keepalive / 2:
                # private paho call: there is no public "ping now"; guarded so a paho change only disables it
                send = getattr(self.client, "_send_pingreq", None)
                if send is not None:
                    try:
                        send()
                        pinged_at = time.monotonic()
                    except Exception:  # noqa: BLE001 - a failing write shows up as a disconnect anyway
                        pass

    def abort(self, reason: str) -> None:
        """Drop the link without DISCONNECT (the broker then publishes our will)."""
        self.last_error = self.last_error or reason
        sock = self._sock
        self._detach()
        try:
            self.client._sock_close()  # paho-internal close also runs its socket-close callback
        except Exception:  # noqa: BLE001
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._finish(reason)

    async def close(self, timeout: float = 2.0) -> None:
        """Clean DISCONNECT (reason 0: the broker discards the will)."""
        if self._sock is None:
            self._finish("closed")
            return
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self.abort("disconnect timed out")

    def _detach(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None and self.loop is not None:
            try:
                self.loop.remove_reader(sock)
                self.loop.remove_writer(sock)
            except (ValueError, OSError):
                pass
        self._writer_on = False
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self._tasks.clear()

    def _finish(self, reason: str) -> None:
        if self._connack_fut is not None and not self._connack_fut.done():
            self._connack_fut.set_exception(ConnectFailed(self.last_error or reason))
            self._connack_fut.exception()  # mark retrieved
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(self.last_error or reason)
        for fut in self._pending_subs.values():
            if not fut.done():
                fut.set_exception(ConnectFailed(reason))
                fut.exception()
        self._pending_subs.clear()

    @property
    def is_open(self) -> bool:
        return self._sock is not None and self.connack is not None

    # ---- operations ---------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> tuple[int, int]:
        """Returns (rc, mid); rc is paho's MQTTErrorCode value (0 = queued for the wire)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        return int(info.rc), info.mid

    async def subscribe(self, topics: list[tuple[str, int]], no_local: bool = True) -> list[int]:
        from paho.mqtt.subscribeoptions import SubscribeOptions

        subs = [(t, SubscribeOptions(qos=q, noLocal=no_local if not t.startswith("$share/") else False))
                for t, q in topics]
        rc, mid = self.client.subscribe(subs)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectFailed(f"subscribe failed: {mqtt.error_string(rc)}")
        fut = self.loop.create_future()
        self._pending_subs[mid] = fut
        async with asyncio.timeout(self.connect_timeout_s):
            return await fut

    def ack(self, mid: int, qos: int = 1) -> None:
        if self._sock is not None:
            self.client.ack(mid, qos)

    def inflight(self) -> int:
        return len(self.client._out_messages)  # paho-internal; read-only, for the memory-bound checks

    # ---- paho callbacks (all run in the event loop thread) ----------------------------------------------
    def _cb_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_int(reason_code) >= 0x80:
            self.last_error = f"broker refused the connection: {reason_name(reason_code)} " \
                              f"(0x{reason_int(reason_code):02X})"
            if self._connack_fut and not self._connack_fut.done():
                self._connack_fut.set_exception(ConnectFailed(self.last_error))
            return
        p = properties
        ack = ConnAck(receive_maximum=int(getattr(p, "ReceiveMaximum", 65535) or 65535),
                      maximum_packet_size=getattr(p, "MaximumPacketSize", None),
                      assigned_client_id=getattr(p, "AssignedClientIdentifier", None),
                      server_keepalive=getattr(p, "ServerKeepAlive", None),
                      topic_alias_maximum=int(getattr(p, "TopicAliasMaximum", 0) or 0),
                      raw=p.json() if p is not None and hasattr(p, "json") else {})
        if ack.server_keepalive:
            self.keepalive = int(ack.server_keepalive)
        self.connack = ack
        if self._connack_fut and not self._connack_fut.done():
            self._connack_fut.set_result(ack)

    def _cb_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        rc = reason_int(reason_code)
        if rc:
            self.last_error = self.last_error or f"disconnected: {reason_name(reason_code)} (0x{rc:02X})"
        self._detach()
        self._finish(self.last_error or "disconnected")

    def _cb_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if self._on_publish is not None:
            self._on_publish(mid, reason_int(reason_code), reason_name(reason_code))

    def _cb_message(self, client, userdata, message) -> None:
        self.last_rx = time.monotonic()
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:  # a bad message must never take the connection down
                log.exception("message handler failed", extra={"topic": message.topic})

    def _cb_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        fut = self._pending_subs.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result([reason_int(r) for r in reason_codes])

    def _cb_sock_close(self, client, userdata, sock) -> None:
        if self.loop is not None:
            try:
                self.loop.remove_reader(sock)
                self.loop.remove_writer(sock)
            except (ValueError, OSError):
                pass
        if sock is self._sock:
            self._sock = None
            self._finish(self.last_error or "socket closed")

    def _cb_reg_write(self, client, userdata, sock) -> None:
        if not self._writer_on and self.loop is not None and sock is not None and self._sock is not None:
            self._writer_on = True
            self.loop.add_writer(sock, self._writable)

    def _cb_unreg_write(self, client, userdata, sock) -> None:
        if self._writer_on and self.loop is not None:
            self._writer_on = False
            try:
                self.loop.remove_writer(sock)
            except (ValueError, OSError):
                pass

    def _writable(self) -> None:
        self.client.loop_write()
