"""Tests use the same Mosquitto launcher as the demo (simulators/broker.py)."""
from simulators.broker import MOSQUITTO, MosquittoBroker, free_port  # noqa: F401
