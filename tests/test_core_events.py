import json
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from edge.events import Event, EventError, MediaRef, Severity, format_ts, parse_ts, uuid7, uuid7_time_ms
from edge.events.kinds import KINDS, Priority, validate_payload


def make(**kw):
    base = dict(id=uuid7(), ts_ms=1_764_574_338_123, kind="access.granted", gateway_id="gw-1",
                compound_id="cp-1", source="ctl-405419896",
                payload={"controller": "405419896", "door": 3, "direction": "in", "credential": "8165537"})
    base.update(kw)
    return Event(**base)


def test_json_round_trip_exact():
    e = make(media=(MediaRef("m1", size=10, sha256="ab"),), severity=Severity.WARNING)
    text = e.to_json()
    assert Event.from_json(text) == e
    assert Event.from_json(text).to_json() == text
    d = json.loads(text)
    assert d["ts"] == "2025-12-01T07:32:18.123Z"
    assert d["schema"] == 1


@settings(max_examples=300, deadline=None)
@given(ts=st.integers(min_value=0, max_value=4_102_444_800_000),
       payload=st.dictionaries(st.text(min_size=1, max_size=8),
                               st.one_of(st.integers(-2**53, 2**53), st.text(max_size=20), st.booleans(), st.none(),
                                         st.floats(allow_nan=False, allow_infinity=False)), max_size=5))
def test_round_trip_property(ts, payload):
    e = make(ts_ms=ts, kind="gateway.test", payload=payload)
    assert Event.from_json(e.to_json()) == e


def test_timestamp_format_and_parse():
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert parse_ts("2026-12-01T07:32:18.007Z") % 1000 == 7
    with pytest.raises(EventError, match="not a UTC timestamp"):
        parse_ts("2026-12-01 07:32:18")


def test_uuid7_time_ordered_and_unique():
    ids = [uuid7() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    assert uuid.UUID(ids[0]).version == 7
    assert uuid7_time_ms(uuid7(1_000)) == 1_000
    assert len({uuid7(1_000) for _ in range(1000)}) == 1000
    later = uuid7()
    assert later > ids[-1]


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("kind"), "missing field"),
    (lambda d: d.update(extra=1), "unknown field"),
    (lambda d: d.update(id="nope"), "is not a UUID"),
    (lambda d: d.update(severity="loud"), "is not one of info"),
    (lambda d: d.update(payload=[1]), "expected a JSON object"),
    (lambda d: d.update(ts="yesterday"), "not a UTC timestamp"),
    (lambda d: d.update(media=[{"x": 1}]), "media reference"),
])
def test_from_dict_rejects_with_clear_message(mutate, message):
    d = make().to_dict()
    mutate(d)
    with pytest.raises(EventError, match=message):
        Event.from_dict(d)


def test_not_json():
    with pytest.raises(EventError, match="not valid JSON"):
        Event.from_json(b"\xff{")


def test_registry_has_required_kinds_and_priorities():
    for k in ["access.granted", "access.denied", "door.forced", "door.held_open", "bin.level", "bin.full",
              "bin.temperature", "fire_lane.blocked", "fire_lane.cleared", "waste.litter", "waste.off_hours_drop",
              "camera.offline", "device.offline", "device.online"]:
        assert k in KINDS
    assert KINDS["bin.level"].priority == Priority.TELEMETRY
    assert KINDS["door.forced"].priority == Priority.ALARM
    assert KINDS["access.denied"].priority > KINDS["camera.offline"].priority


def test_payload_validation_names_the_field():
    assert validate_payload("bin.level", {"bin": "b1", "fill_pct": 42}) == {"bin": "b1", "fill_pct": 42.0}
    with pytest.raises(EventError, match=r"bin.level payload.fill_pct"):
        validate_payload("bin.level", {"bin": "b1", "fill_pct": 142})
    with pytest.raises(EventError, match="not a registered event kind"):
        validate_payload("bin.explode", {})
