"""Access-control drivers: UHPPOTE/微耕 network controllers (UDP), OSDP readers (RS-485, libosdp CP role),
Wiegand readers behind Wiegand-to-serial converters. One component per configured device."""
from __future__ import annotations

from edge.config.devices import OsdpReader, UhppoteController, WiegandSerial


def build_components(config, ctx) -> list:
    from .osdp import OsdpReaderDriver
    from .uhppote import UhppoteDriver
    from .uhppote_listener import UhppoteListener
    from .wiegand_serial import WiegandSerialDriver

    listeners: dict[tuple[str, int], UhppoteListener] = {}
    components: list = []
    tz = config.gateway.timezone
    for d in config.devices:
        if isinstance(d, UhppoteController):
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
