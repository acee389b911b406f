"""Waste-bin level sensors: Modbus RTU ultrasonic sensors on RS-485 buses and streaming UART sensors.

`build_components(config, ctx)` returns one component per `modbus_level` bus and per `uart_level` sensor.
"""
from __future__ import annotations

from edge.config.devices import ModbusLevelBus, UartLevelSensor

from .modbus_driver import ModbusLevelBusDriver, sensor_device_id
from .uart_driver import UartLevelDriver

__all__ = ["ModbusLevelBusDriver", "UartLevelDriver", "build_components", "sensor_device_id"]


def build_components(config, ctx) -> list:
    components: list = []
    for device in config.devices:
        if isinstance(device, ModbusLevelBus):
            components.append(ModbusLevelBusDriver(device))
        elif isinstance(device, UartLevelSensor):
            components.append(UartLevelDriver(device))
    return components
