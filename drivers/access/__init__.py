"""Access-control drivers: UHPPOTE/微耕 network controllers (UDP), OSDP readers (RS-485, libosdp CP role),
Wiegand readers behind Wiegand-to-serial converters. One component per configured device."""
from __future__ import annotations

import logging

from edge.config.devices import OsdpReader, UhppoteController, WiegandSerial

log = logging.getLogger("drivers.access")


def build_components(config, ctx) -> list:
    from .osdp import OsdpReaderDriver
    from .uhppote import UhppoteDriver
    from .uhppote_listener import UhppoteListener
    from .wiegand_serial import WiegandSerialDriver

    listeners: dict[tuple[str, int], UhppoteListener] = {}
    components: list = []
    tz = config.gateway.timezone
    serials: dict[int, str] = {}
    for d in config.devices:
        if isinstance(d, UhppoteController):
            if d.serial in serials:
                # one listener dispatches by serial: a second device with the same serial would steal its events
                log.error("two uhppote devices share a serial number; the second is not started",
                          extra={"serial": d.serial, "devices": [serials[d.serial], d.id]})
                continue
            serials[d.serial] = d.id
            key = (d.listen_host, d.listen_port)
            listener = listeners.get(key)
            if listener is None:
                listener = listeners[key] = UhppoteListener(*key)
            components.append(UhppoteDriver(d, listener, tz))
        elif isinstance(d, OsdpReader):
            components.append(OsdpReaderDriver(d))
        elif isinstance(d, WiegandSerial):
            components.append(WiegandSerialDriver(d))
    return components
