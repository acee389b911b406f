"""Bin logic without I/O: calibration, median filter, reporting cadence, full hysteresis, temperature alarms."""
from __future__ import annotations

import pydantic
import pytest

from drivers.bins.level import BinLevelLogic, fill_pct
from edge.config.devices import BinCalibration, ModbusLevelBus, ModbusSensor

CAL = dict(bin="b1", empty_mm=1200, full_mm=200)


def cal(**kw) -> BinCalibration:
    return BinCalibration.model_validate(CAL | kw)


def mm(pct: float, c: BinCalibration) -> int:
    return round(c.empty_mm - pct / 100 * (c.empty_mm - c.full_mm))


def kinds(emits):
    return [k for k, _, _ in emits]


def test_calibration_to_fill_pct():
    c = cal()
    assert fill_pct(c, 1200) == 0.0 and fill_pct(c, 200) == 100.0 and fill_pct(c, 700) == 50.0
    assert fill_pct(c, 1500) == 0.0 and fill_pct(c, 50) == 100.0  # clamped both ways


def test_median_rejects_a_ghost_echo():
    c = cal(median_window=5)
    logic = BinLevelLogic(c, "s1")
    for t in range(4):
        logic.update(t, [mm(20, c)])
    out = logic.update(5, [mm(100, c)])  # a ghost reading "full"
    assert logic.fill == pytest.approx(20, abs=0.2) and "bin.full" not in kinds(out)


def test_level_reported_on_change_or_periodically():
    c = cal(median_window=1, report_change_pct=5, report_every_s=600)
    logic = BinLevelLogic(c, "s1")
    assert kinds(logic.update(0, [mm(10, c)])) == ["bin.level"]
    assert logic.update(10, [mm(14, c)]) == []  # +4 %: not meaningful
    assert kinds(logic.update(20, [mm(15.2, c)])) == ["bin.level"]  # +5.2 % since the last report
    assert logic.update(500, [mm(15, c)]) == []
    [(kind, payload, _)] = logic.update(620, [mm(15, c)])  # 10 minutes after the last report
    assert kind == "bin.level" and payload["fill_pct"] == 15.0 and payload["sensor"] == "s1"


@pytest.mark.parametrize("raise_pct,clear_pct", [(90, 70), (80, 50)])
def test_full_hysteresis(raise_pct, clear_pct):
    c = cal(median_window=1, full_raise_pct=raise_pct, full_clear_pct=clear_pct)
    logic = BinLevelLogic(c, "s1")

    def full_events(t, pct):
        return [p for k, p, _ in logic.update(t, [mm(pct, c)]) if k == "bin.full"]

    assert full_events(0, raise_pct - 1) == []
    [raised] = full_events(1, raise_pct)
    assert raised["state"] == "raised" and raised["threshold_pct"] == raise_pct
    assert full_events(2, clear_pct + 1) == []  # between the thresholds: still full
    assert full_events(3, raise_pct + 5) == []  # no second raise
    [cleared] = full_events(4, clear_pct - 0.5)
    assert cleared["state"] == "cleared"
    assert full_events(5, clear_pct + 1) == []


def test_temperature_absolute_with_spike_rejection_and_clear():
    c = cal(temperature_alarm_c=60, temperature_clear_margin_c=5)
    logic = BinLevelLogic(c, "s1")
    for t, temp in enumerate([25, 25, 200, 25, 25]):  # one garbage reading is not a fire
        assert logic.update(t * 10, [], temperature_c=temp) == []
    out = []
    for t, temp in enumerate([61, 62, 63], start=10):
        out += logic.update(t * 600, [], temperature_c=temp)  # slow: no rate alarm
    assert [(p["trigger"], p["temperature_c"]) for _, p, _ in out] == [("absolute", 61.0)]
    out = []
    for t, temp in enumerate([57, 56, 54, 54], start=20):
        out += logic.update(t * 600, [], temperature_c=temp)
    assert [(p["trigger"], sev) for _, p, sev in out] == [("cleared", "info")]


def test_temperature_rate_of_rise():
    c = cal(temperature_rise_c_per_min=5, temperature_rate_window_s=120)
    logic = BinLevelLogic(c, "s1")
    out = []
    for i in range(20):  # 30 C rising 1 C every 10 s = 6 C/min, below the absolute threshold
        out += logic.update(i * 10, [], temperature_c=30 + i)
    [(kind, payload, _)] = out
    assert kind == "bin.temperature" and payload["trigger"] == "rate_of_rise"
    assert payload["rise_c_per_min"] >= 5 and payload["temperature_c"] < 45 < 60
    assert logic.rise_c_per_min == pytest.approx(6, abs=0.1)  # the slope settles on the true rate


def test_config_validation():
    with pytest.raises(pydantic.ValidationError, match="full_mm must be smaller"):
        cal(full_mm=1300)
    with pytest.raises(pydantic.ValidationError, match="hysteresis"):
        cal(full_raise_pct=70, full_clear_pct=70)
    s = ModbusSensor.model_validate(CAL | {"unit": 3, "register_map": "dyp-input"})
    assert s.register_map.function == 4 and s.register_map.distance_processed == 0x0100
    with pytest.raises(pydantic.ValidationError, match="unknown register map"):
        ModbusSensor.model_validate(CAL | {"unit": 3, "register_map": "acme"})
    with pytest.raises(pydantic.ValidationError, match="share Modbus unit 3"):
        ModbusLevelBus.model_validate({"type": "modbus_level", "id": "b", "serial": {"port": "/dev/ttyUSB0"},
                                       "sensors": [CAL | {"unit": 3}, CAL | {"bin": "b2", "unit": 3}]})
