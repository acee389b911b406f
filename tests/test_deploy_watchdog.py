"""systemd notify/watchdog: READY after start-up, WATCHDOG only from a passing health check, none when frozen."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.clock import SystemClock
from edge.config import load_config_text
from edge.deploy.health import HealthCheck, LoopLagProbe, _progress_age_s
from edge.deploy.sdnotify import Notifier, NotifyError, watchdog_interval_s
from edge.runtime import Component, EventBus, RuntimeContext, Supervisor
from edge.store import Store

ROOT = Path(__file__).resolve().parents[1]


class NotifyListener:
    """The systemd side of sd_notify: a Unix datagram socket that records (time, fields) per message."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key: str, value: str | None = None, timeout: float = 15) -> float:
        end = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < end:
            for t, f in self.messages[seen:]:
                if key in f and (value is None or value in f[key]):
                    return t
            seen = len(self.messages)
            self.pump(0.05)
        raise AssertionError(f"no {key}={value or '*'} within {timeout}s; got {self.messages}")

    def count(self, key: str, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for t, f in self.messages if key in f and since <= t <= until)

    def close(self) -> None:
        self.sock.close()


def test_gateway_ready_then_watchdog_stops_when_loop_frozen(tmp_path, minimal_config_text):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(minimal_config_text)
    listener = NotifyListener(tmp_path / "notify.sock")
    env = dict(os.environ, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="1000000", EDGE_TEST_HOOKS="1",
               EDGE_TEST_FREEZE_S="2.5", PYTHONPATH=str(ROOT))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "-c", str(cfg)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t_ready = listener.wait_for("READY", "1", timeout=20)
        ready_msg = next(f for t, f in listener.messages if "READY" in f)
        assert "Running" in ready_msg.get("STATUS", ""), ready_msg
        listener.pump(2.1)
        pings = listener.count("WATCHDOG", since=t_ready)
        assert pings >= 3, f"expected a WATCHDOG every 0.5 s, got {pings}: {listener.messages}"
        assert listener.count("WATCHDOG", until=t_ready) == 0, "no WATCHDOG before READY"

        proc.send_signal(signal.SIGUSR2)
        t_frozen = listener.wait_for("STATUS", "frozen", timeout=5)
        listener.pump(2.0)
        assert listener.count("WATCHDOG", since=t_frozen) == 0, "WATCHDOG must stop while the loop is frozen"

        # released after 2.5 s: the health check first reports the stall, then pings resume
        t_unhealthy = listener.wait_for("STATUS", "event loop blocked", timeout=5)
        listener.wait_for("WATCHDOG", timeout=5)
        assert listener.count("WATCHDOG", since=t_frozen, until=t_unhealthy) == 0
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        listener.pump(0.3)
        listener.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert listener.count("STOPPING") == 1


def test_notifier_raises_when_socket_is_gone(tmp_path):
    n = Notifier(str(tmp_path / "missing.sock"))
    with pytest.raises(NotifyError, match="cannot notify systemd"):
        n.notify(READY=1)
    assert n.last_error
    with pytest.raises(NotifyError):
        Notifier("vsock:2:1234")
    off = Notifier("")
    off.notify(WATCHDOG=1)  # not under systemd: nothing to send, nothing fails
    assert not off.enabled and off.sent == 1


def test_notifier_abstract_socket_and_multiline_rejected():
    name = f"@edge-test-{os.getpid()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(b"\0" + name[1:].encode())
    srv.settimeout(2)
    try:
        n = Notifier(name)
        n.notify(STATUS="hello", WATCHDOG=1)
        assert srv.recv(100) == b"STATUS=hello\nWATCHDOG=1"
        with pytest.raises(ValueError):
            n.notify(STATUS="two\nlines")
    finally:
        srv.close()


def test_watchdog_interval_rules():
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # meant for another pid
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    with pytest.raises(NotifyError):
        watchdog_interval_s({"WATCHDOG_USEC": "soon"})


# ---- the health check in-process, with a real store and bus -----------------------------------------------
class FakeUplink(Component):
    """Stands in for cloud_bridge's uplink (built elsewhere): only its health() shape matters here."""

    name = "uplink"

    def __init__(self):
        self.state = {"connected": True, "outbox_depth": 0}

    async def run(self, ctx):
        await asyncio.Event().wait()

    def health(self):
        return dict(self.state)


class Crasher(Component):
    name = "reader"
    critical = True

    async def run(self, ctx):
        raise OSError("serial port gone")


@pytest.fixture
async def lag():
    """A running loop-lag probe, as the SystemdNotify component runs it."""
    probe = LoopLagProbe(tick_s=0.05)
    task = asyncio.create_task(probe.run())
    yield probe
    task.cancel()


@pytest.fixture
async def ctx(tmp_path, minimal_config_text):
    import cloud_bridge.outbox  # noqa: F401  (registers the outbox counters the health check reads)
    cfg = load_config_text(minimal_config_text)
    clock = SystemClock()
    store = Store(tmp_path / "edge.db", clock_ms=clock.time_ms)
    bus = EventBus(store, clock, commit_interval_ms=20)
    c = RuntimeContext(config=cfg, store=store, bus=bus, clock=clock)
    bus.start()
    yield c
    if c.supervisor:
        await c.supervisor.stop()
    await bus.stop()
    store.close()


async def test_read_only_store_withholds_watchdog(ctx, lag):
    hc = HealthCheck(ctx, lag, store_timeout_s=2)
    Supervisor(ctx, [])
    first = await hc.check()
    assert first.ok, first.problems
    assert hc.probes == 1  # idle bus: proven by a one-row write
    # What a Pi does after SD-card errors: ext4 remounts read-only and every write fails.
    ctx.store.conn.execute("PRAGMA query_only = 1")
    res = await hc.check()
    assert not res.ok
    assert any("store not writable" in p and "readonly" in p for p in res.problems), res.problems
    assert res.status_line().startswith("UNHEALTHY (watchdog withheld): store not writable")
    ctx.store.conn.execute("PRAGMA query_only = 0")
    assert (await hc.check()).ok


async def test_bus_commits_spare_the_probe_write(ctx, lag):
    hc = HealthCheck(ctx, lag)
    Supervisor(ctx, [])
    await hc.check()
    probes = hc.probes
    ctx.emit_new("gateway.started", "gw", {"version": "t", "config_hash": "x", "pid": 1})
    for _ in range(100):
        await asyncio.sleep(0.02)
        if ctx.bus.committed:
            break
    res = await hc.check()
    assert res.ok and hc.probes == probes, "a fresh bus commit proves the store writable without a probe"


async def committed(ctx, n: int) -> None:
    """Emit n events and wait until the bus has put them in the store (and so in the outbox)."""
    target = ctx.bus.committed + n
    for i in range(n):
        ctx.emit_new("gateway.test", "test", {"i": i})
    for _ in range(200):
        if ctx.bus.committed >= target:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("bus did not commit")


async def test_outbox_stuck_only_when_connected(ctx, lag):
    up = FakeUplink()
    sup = Supervisor(ctx, [up])
    sup.start()
    await asyncio.sleep(0.05)
    hc = HealthCheck(ctx, lag, outbox_stall_s=0.3)
    await committed(ctx, 50)  # a real backlog in the outbox
    up.state = {"connected": True, "outbox_depth": 0, "acked": 10}  # a stale depth must not hide it
    first = await hc.check()
    assert first.ok and first.facts["uplink"]["outbox_depth"] == 50, first.facts
    await asyncio.sleep(0.4)
    up.state["acked"] = 11  # progress: a PUBACK came in
    assert (await hc.check()).ok
    await asyncio.sleep(0.4)
    res = await hc.check()  # nothing moved for 0.4 s while connected with a backlog
    assert not res.ok and "outbox stuck" in res.problems[0] and "50 events" in res.problems[0], res.problems
    up.state["connected"] = False  # offline: a backlog is expected, not a fault
    res = await hc.check()
    assert res.ok and any("uplink offline, 50 events waiting" in n for n in res.notes), res.notes
    assert "offline" in res.status_line()


async def test_outbox_progress_timestamp_counts(ctx, lag):
    up = FakeUplink()
    sup = Supervisor(ctx, [up])
    sup.start()
    await asyncio.sleep(0.05)
    hc = HealthCheck(ctx, lag, outbox_stall_s=0.3)
    await committed(ctx, 5)
    up.state = {"connected": True, "depth": 5, "last_progress_ms": ctx.clock.time_ms()}
    assert (await hc.check()).ok
    await asyncio.sleep(0.4)
    up.state["last_progress_ms"] = ctx.clock.time_ms()  # the uplink says it just got a PUBACK
    assert (await hc.check()).ok
    await asyncio.sleep(0.4)
    assert not (await hc.check()).ok


def test_progress_age_shapes():
    now, mono = 1_780_000_000.0, 500.0
    assert _progress_age_s("last_progress_ms", (now - 5) * 1000, now, mono) == pytest.approx(5)
    assert _progress_age_s("last_progress", now - 7, now, mono) == pytest.approx(7)
    assert _progress_age_s("last_progress_mono", mono - 3, now, mono) == pytest.approx(3)
    assert _progress_age_s("progress_age_s", 9, now, mono) == 9
    assert _progress_age_s("last_progress", "2026-05-28T20:26:30Z", 1_780_000_000.0, mono) == pytest.approx(10, abs=1)
    assert _progress_age_s("last_progress", None, now, mono) is None


async def test_critical_component_down_past_grace(ctx, lag):
    sup = Supervisor(ctx, [Crasher()], backoff_min=5)
    sup.start()
    await asyncio.sleep(0.05)
    hc = HealthCheck(ctx, lag, critical_grace_s=0.2)
    res = await hc.check()
    assert res.ok and any("reader restarting" in n for n in res.notes), res
    await asyncio.sleep(0.3)
    res = await hc.check()
    assert not res.ok and "critical component reader" in res.problems[0]


async def test_real_uplink_stalled_broker_withholds_watchdog(tmp_path, mosquitto, lag):
    """With cloud_bridge's real uplink: a broker that keeps the TCP connection but stops answering (SIGSTOP)
    makes the outbox stall while "connected" -> unhealthy; SIGCONT -> progress -> healthy again."""
    import cloud_bridge.uplink  # noqa: F401
    from edge.runtime import Gateway

    text = (f"gateway: {{id: gw-wd-1, compound_id: cp-wd, county_code: '330106'}}\n"
            f"storage: {{path: {tmp_path / 'data'}, commit_interval_ms: 20}}\nweb: {{enabled: false}}\n"
            f"uplink: {{broker: '{mosquitto.url}', keepalive_s: 60}}\n")
    gw = Gateway(load_config_text(text))
    ctx = await gw.start()
    try:
        hc = HealthCheck(ctx, lag, outbox_stall_s=1.5)

        async def until(pred, timeout=10.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                res = await hc.check()
                if pred(res):
                    return res
                await asyncio.sleep(0.2)
            raise AssertionError(f"condition not reached: {res.problems} {res.facts}")


        up = await until(lambda r: (r.facts.get("uplink") or {}).get("connected"))
        assert up.ok, up.problems
        os.kill(mosquitto.proc.pid, signal.SIGSTOP)
        try:
            await committed(ctx, 20)
            stuck = await until(lambda r: not r.ok, timeout=15)
            assert "outbox stuck" in stuck.problems[0], stuck.problems
            assert stuck.facts["uplink"]["connected"] and stuck.facts["uplink"]["outbox_depth"] >= 20
        finally:
            os.kill(mosquitto.proc.pid, signal.SIGCONT)
        # the broker answers again: the backlog moves (acks or depth going down) and the check passes
        healthy = await until(lambda r: r.ok, timeout=15)
        assert not healthy.problems
    finally:
        # stop() once hung here (asyncio.wait_for swallowing a racing cancel in the uplink); fixed with
        # asyncio.timeout, so a hang is now a failure.
        async with asyncio.timeout(20):
            await gw.stop()
