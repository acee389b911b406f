"""edge.yaml validation: every problem is one line `FILE:LINE: dotted.path: what is wrong (what is expected)`."""
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config, load_config_text

ROOT = Path(__file__).resolve().parents[1]

BASE = """gateway:
  id: gw-1
  compound_id: cp-1
  county_code: "330106"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "edge.yaml")
    return [str(p) for p in info.value.problems]


def one(text: str) -> str:
    got = problems(text)
    assert len(got) == 1, got
    return got[0]


def test_example_config_is_valid():
    cfg = load_config(ROOT / "docs/examples/edge.yaml")
    assert cfg.gateway.id == "gw-xh-0001"
    assert cfg.devices[2].sensors[1].unit == 2


def test_minimal_config_is_valid():
    cfg = load_config_text(BASE)
    assert cfg.uplink is None and cfg.devices == []


BAD = [
    # 1 typo in a key: did-you-mean hint
    (BASE.replace("compound_id", "compund_id"), [
        "edge.yaml:1: gateway.compound_id: required key is missing (compound (residential estate) id assigned by the county)",
        "edge.yaml:3: gateway.compund_id: unknown key 'compund_id', did you mean 'compound_id'? "
        "(allowed keys: compound_id, county_code, id, name, timezone)"]),
    # 2 unknown top-level section
    (BASE + "uplnk:\n  broker: mqtt://x\n", [
        "edge.yaml:5: uplnk: unknown key 'uplnk', did you mean 'uplink'? (allowed keys: alerts, cameras, devices, "
        "gateway, logging, models, schedules, stations, storage, uplink, web, zones)"]),
    # 3 county code format
    (BASE.replace('"330106"', '"33010"'), [
        "edge.yaml:4: gateway.county_code: '33010' has the wrong format "
        "(6-digit administrative division code, e.g. 330106)"]),
    # 4 MQTT 3.1.1 refused with the reason
    (BASE + "uplink:\n  broker: mqtt://h:1883\n  protocol: 3.1.1\n", [
        "edge.yaml:7: uplink.protocol: MQTT 3.1.1 is refused: a publish the broker's ACL denies is PUBACKed as "
        "success and silently dropped; MQTT 5 reports it (reason 0x87) (MQTT protocol version; only 5 is accepted)"]),
    # 5 bad broker URL
    (BASE + "uplink:\n  broker: http://h\n", [
        "edge.yaml:6: uplink.broker: 'http://h' is not a broker URL (mqtt://host:1883 or mqtts://host:8883)"]),
    # 6 integer expected
    (BASE + "uplink:\n  broker: mqtt://h\n  keepalive_s: soon\n", [
        "edge.yaml:7: uplink.keepalive_s: 'soon': input should be a valid integer, unable to parse string as an "
        "integer (an integer)"]),
    # 7 out of range
    (BASE + "uplink:\n  broker: mqtt://h\n  max_inflight: 5000\n", [
        "edge.yaml:7: uplink.max_inflight: 5000 is out of range (a number <= 1000)"]),
    # 8 unknown device type
    (BASE + "devices:\n  - type: zigbee\n    id: z1\n", [
        "edge.yaml:6: devices[0]: unknown type 'zigbee' (one of 'uhppote', 'osdp', 'wiegand_serial', "
        "'modbus_level', 'uart_level')"]),
    # 9 missing device type
    (BASE + "devices:\n  - id: z1\n", [
        "edge.yaml:6: devices[0]: missing 'type' (type: uhppote | osdp | wiegand_serial | modbus_level | uart_level)"]),
    # 10 Modbus unit out of range, deep path with list index
    (BASE + "devices:\n  - type: modbus_level\n    id: bus\n    serial: {port: /dev/ttyUSB0}\n    sensors:\n"
            "      - {unit: 300, bin: b1, empty_mm: 1200, full_mm: 200}\n", [
        "edge.yaml:10: devices[0].sensors[0].unit: 300 is out of range (a number <= 247)"]),
    # 11 calibration the wrong way round (model-level check)
    (BASE + "devices:\n  - type: uart_level\n    id: u1\n    bin: b1\n    serial: {port: /dev/ttyS0}\n"
            "    empty_mm: 200\n    full_mm: 1200\n", [
        "edge.yaml:6: devices[0]: full_mm must be smaller than empty_mm (the sensor looks down into the bin)"]),
    # 12 self-intersecting polygon
    (BASE + "cameras:\n  - {id: c1, url: 'file:///x.mp4'}\nzones:\n  - id: z\n    camera: c1\n    type: fire_lane\n"
            "    polygon: [[0, 0], [1, 1], [1, 0], [0, 1]]\n", [
        "edge.yaml:11: zones[0].polygon: edges 0-1 and 2-3 cross (self-intersecting polygon) "
        "([[x, y], ...] as fractions of image width/height)"]),
    # 13 point outside 0..1
    (BASE + "cameras:\n  - {id: c1, url: 'file:///x.mp4'}\nzones:\n  - id: z\n    camera: c1\n    type: fire_lane\n"
            "    polygon: [[0, 0], [1.5, 0], [1, 1]]\n", [
        "edge.yaml:11: zones[0].polygon: point 1 (1.5, 0.0) is outside 0..1 (coordinates are fractions of the "
        "image) ([[x, y], ...] as fractions of image width/height)"]),
    # 14 overlapping drop windows
    (BASE + "schedules:\n  - id: s\n    windows: ['07:00-09:00', '08:30-10:00']\n", [
        "edge.yaml:7: schedules[0].windows: windows 07:00-09:00 and 08:30-10:00 overlap "
        "(drop windows, e.g. [\"07:00-09:00\", \"18:00-21:00\"])"]),
    # 15 zone refers to a camera that does not exist (cross reference)
    (BASE + "zones:\n  - id: z\n    camera: nocam\n    type: fire_lane\n    polygon: [[0, 0], [1, 0], [1, 1]]\n", [
        "edge.yaml:7: zones[0].camera: unknown camera 'nocam' (one of: (no cameras configured))"]),
    # 16 duplicate ids
    (BASE + "cameras:\n  - {id: c1, url: 'file:///a.mp4'}\n  - {id: c1, url: 'file:///b.mp4'}\n", [
        "edge.yaml:7: cameras[1].id: duplicate id 'c1' (ids unique within cameras)"]),
    # 17 unsupported camera URL scheme
    (BASE + "cameras:\n  - {id: c1, url: 'ftp://cam/x'}\n", [
        "edge.yaml:6: cameras[0].url: 'ftp://cam/x' has an unsupported scheme (rtsp://... (Hikvision sub-stream "
        "/Streaming/Channels/102, Dahua /cam/realmonitor?channel=1&subtype=1), http(s)://... (MJPEG stream or JPEG "
        "snapshot, told apart by Content-Type), or file:///path (looped))"]),
    # 18 secret with two sources
    (BASE + "uplink:\n  broker: mqtt://h\n  password: {env: X, value: y}\n", [
        "edge.yaml:7: uplink.password: give exactly one of file, env or value"]),
    # 19 YAML syntax error
    ("gateway:\n  id: gw-1\n   compound_id: x\n", [
        "edge.yaml:3: (yaml): mapping values are not allowed here (valid YAML; check indentation and quotes)"]),
    # 20 wrong literal
    (BASE + "web:\n  language: fr\n", [
        "edge.yaml:6: web.language: 'fr' is not allowed (one of 'zh' or 'en')"]),
    # 21 route names an unknown channel
    (BASE + "alerts:\n  routes:\n    - {name: r, channels: [wecom-x]}\n", [
        "edge.yaml:7: alerts.routes[0].channels[0]: unknown channel 'wecom-x' (one of: (no channels configured))"]),
    # 22 two sensors on one Modbus address
    (BASE + "devices:\n  - type: modbus_level\n    id: bus\n    serial: {port: /dev/ttyUSB0}\n    sensors:\n"
            "      - {unit: 1, bin: b1, empty_mm: 1200, full_mm: 200}\n"
            "      - {unit: 1, bin: b2, empty_mm: 1200, full_mm: 200}\n", [
        "edge.yaml:6: devices[0]: two sensors share Modbus unit 1 on one bus"]),
    # 23 empty file
    ("", ["edge.yaml:1: (top level): the file is empty (a mapping with at least a gateway: section)"]),
    # 24 unknown timezone
    (BASE + "  timezone: Mars/Olympus\n", [
        "edge.yaml:5: gateway.timezone: unknown timezone 'Mars/Olympus' "
        "(IANA timezone for drop windows and quiet hours)"]),
]


@pytest.mark.parametrize("text,expected", BAD, ids=[f"bad{i + 1}" for i in range(len(BAD))])
def test_bad_config_exact_messages(text, expected):
    assert problems(text) == expected


def test_unquoted_county_code_accepted():
    assert load_config_text(BASE.replace('"330106"', "330106")).gateway.county_code == "330106"


def test_secret_from_env_and_file(tmp_path, monkeypatch):
    key = tmp_path / "pw"
    key.write_text("s3cret\n")
    cfg = load_config_text(BASE + f"uplink:\n  broker: mqtt://h\n  password: {{file: {key}}}\n")
    assert cfg.uplink.password.resolve() == "s3cret"
    assert "s3cret" not in repr(cfg.uplink.password)
    monkeypatch.setenv("EDGE_TEST_PW", "from-env")
    cfg = load_config_text(BASE + "uplink:\n  broker: mqtt://h\n  password: env:EDGE_TEST_PW\n")
    assert cfg.uplink.password.resolve() == "from-env"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    cfg = load_config_text(BASE + "uplink:\n  broker: mqtt://h\n  password: {file: pw}\n")
    assert cfg.uplink.password.resolve() == "s3cret"


def test_check_config_cli_exit_codes(tmp_path):
    good = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(ROOT / "docs/examples/edge.yaml")],
                          capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK" in good.stdout
    bad = tmp_path / "edge.yaml"
    bad.write_text(BASE + "uplink:\n  broker: mqtt://h\n  keepalive_s: 1\n  bogus: 1\n")
    r = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(bad)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    from edge.config.uplink import UplinkConfig

    lines = r.stdout.splitlines()
    assert lines == [
        f"{bad}:7: uplink.keepalive_s: 1 is out of range (a number >= 2)",
        f"{bad}:8: uplink.bogus: unknown key 'bogus' (allowed keys: {', '.join(sorted(UplinkConfig.model_fields))})"]
    missing = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "file not found" in missing.stdout


def test_config_schema_is_json_schema():
    import json

    import jsonschema

    r = subprocess.run([sys.executable, "-m", "edge.cli", "config-schema"], capture_output=True, text=True, cwd=ROOT)
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "gateway" in schema["required"]
