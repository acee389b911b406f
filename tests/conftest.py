import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from tests.helpers.broker import MosquittoBroker, free_port  # noqa: E402


@pytest.fixture
def mosquitto(tmp_path):
    """A running Mosquitto on a free port; tests may stop/kill/restart it."""
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path):
    """Build brokers with custom config (ACLs, TLS, max_inflight_messages...)."""
    brokers = []

    def make(extra_conf: str = "", port: int | None = None, start: bool = True) -> MosquittoBroker:
        b = MosquittoBroker(tmp_path / f"mosquitto{len(brokers)}", port=port, extra_conf=extra_conf)
        brokers.append(b)
        return b.start() if start else b

    yield make
    for b in brokers:
        b.stop()


@pytest.fixture
def free_tcp_port():
    return free_port()


@pytest.fixture
def minimal_config_text(tmp_path):
    return f"""gateway:
  id: gw-test-1
  compound_id: cp-test
  county_code: "330106"
storage:
  path: {tmp_path / 'data'}
web:
  enabled: false
"""
