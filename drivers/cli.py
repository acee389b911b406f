"""`edge probe ...`: installer checks of real hardware. Each family adds its own probe subcommands with
`register_probe(probe_subparsers)` in drivers/<family>/cli.py."""
from __future__ import annotations

from edge.imports import import_if_present

FAMILIES = ["drivers.access.cli", "drivers.bins.cli", "drivers.cameras.cli"]


def register_cli(sub) -> None:
    p = sub.add_parser("probe", help="ask real devices whether they answer (serial ports, sensors, readers, cameras)")
    probe_sub = p.add_subparsers(dest="probe_command", metavar="WHAT")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    for name in FAMILIES:
        module = import_if_present(name)
        register = getattr(module, "register_probe", None)
        if register:
            register(probe_sub)
